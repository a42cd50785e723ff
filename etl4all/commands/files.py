"""``etl4all parse`` and ``sample``: the commands that read or write data_points files."""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from etl4all import options
from etl4all.commands.common import handle_errors
from etl4all.errors import ConfigError
from etl4all.settings import DEFAULTS

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)


SINKS = {".parquet": "sink_parquet", ".csv": "sink_csv", ".ndjson": "sink_ndjson"}
"""The formats ``parse -o`` writes, by file suffix: the Polars sink that writes each."""


@click.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the points to this file, in the format its suffix names (.parquet, .csv or "
    ".ndjson), and the rejects beside it (NAME.rejects.SUFFIX). Its folder must exist.",
)
@click.option(
    "--batch-size",
    default=DEFAULTS.batch_rows,
    show_default=True,
    type=options.click_type("batch_rows"),
    envvar="ETL4ALL_BATCH_ROWS",
    show_envvar=True,
    help="Records read and parsed at a time: memory follows this, not the size of the files.",
)
@handle_errors
def parse_command(files: tuple[str, ...], output: str | None, batch_size: int) -> None:
    """Parse data_points FILES and report records, points and rejects per reason (a bad
    record, whatever its lines, is one reject)."""
    from etl4all import frames
    from etl4all.parsing import reading

    out = Path(output) if output else None
    if out is not None:
        if out.suffix.lower() not in SINKS:
            raise ConfigError(
                f"-o {out}: name a .parquet, .csv or .ndjson file (the suffix picks the format)"
            )
        if not out.parent.is_dir():
            raise ConfigError(f"-o {out}: the folder {out.parent} does not exist; create it first")
    points, reasons = 0, collections.Counter[str]()
    hints: dict[tuple[str, str], list[Any]] = {}  # (reason, detail) -> [first place, count]
    rejects_path = out.with_name(out.stem + ".rejects" + out.suffix) if out else None
    with (
        FrameWriter(out, frames.POINTS_SCHEMA) as points_out,
        FrameWriter(rejects_path, frames.REJECTS_SCHEMA) as rejects_out,
    ):
        for name in files:
            path = Path(name)
            with path.open("rb") as file:
                chunks = reading.pieces(file, reading.piece_bytes(batch_size))
                for _, parsed in reading.parse_pieces(chunks, path.name):
                    points += parsed.points.height
                    _tally(parsed.rejects, reasons, hints)
                    points_out.write(parsed.points)
                    rejects_out.write(parsed.rejects)
    rejects = sum(reasons.values())
    share = f" ({rejects / (points + rejects):.1%} of the records)" if rejects else ""
    click.echo(f"records  {points + rejects}")
    click.echo(f"points   {points}")
    click.echo(f"rejects  {rejects}{share}")
    for reason, count in sorted(reasons.items()):
        click.echo(f"  {reason:<18} {count}")
        for (of, detail), (first, seen) in hints.items():
            if of == reason:
                click.echo(f"    {seen} × {detail}; first at {first}")
    if out is not None:
        click.echo(f"wrote {out} and {rejects_path}")


def _tally(
    rejects: pl.DataFrame,
    reasons: collections.Counter[str],
    hints: dict[tuple[str, str], list[Any]],
) -> None:
    """Count ``rejects`` by reason, and by reason and detail with the first place seen."""
    import polars as pl

    reasons.update(rejects.get_column("reason").to_list())
    for reason, detail, first, seen in (
        rejects.filter(pl.col("detail").is_not_null())
        .group_by("reason", "detail", maintain_order=True)
        .agg(pl.format("{}:{}", "source", "line").first(), pl.len())
        .rows()
    ):
        hints.setdefault((reason, detail), [first, 0])[1] += seen


class FrameWriter:
    """Streams frames to one file, in the format its suffix names, through Polars' own
    writer (``sink_parquet``, ``sink_csv``, ``sink_ndjson``) in a thread of its own: the next
    piece is parsed while this one is written. Nothing without a path; a file with no rows
    still holds the schema (Parquet) or the header (CSV)."""

    def __init__(self, path: Path | None, schema: dict[str, pl.DataType]) -> None:
        self._path = path
        self._schema = schema
        self._frames: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._sink, name=f"write {path}", daemon=True)

    def __enter__(self) -> FrameWriter:
        if self._path is not None:
            self._thread.start()
        return self

    def write(self, frame: pl.DataFrame) -> None:
        """Append ``frame`` (every frame has the same schema)."""
        if self._path is not None and frame.height:
            self._put(frame)

    def __exit__(self, *exc: object) -> None:
        """Close the file once every frame is written; raise what the writer raised."""
        if self._path is None:
            return
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _put(self, frame: pl.DataFrame | None) -> None:
        """Queue ``frame`` (None ends the file) unless the writer has stopped."""
        while self._thread.is_alive():
            try:
                self._frames.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue
        raise self._error or RuntimeError(f"the writer of {self._path} stopped")

    def _sink(self) -> None:
        """The writer thread: Polars' sink over the frames queued, until None comes."""
        import polars as pl
        from polars.io.plugins import register_io_source

        assert self._path is not None

        def frames(*_: object) -> Iterator[pl.DataFrame]:
            while (frame := self._frames.get()) is not None:
                yield frame

        source = register_io_source(frames, schema=self._schema)
        suffix = self._path.suffix.lower()
        try:
            if suffix == ".parquet":
                source.sink_parquet(self._path, compression="zstd")
            else:
                getattr(source, SINKS[suffix])(self._path)
        except (pl.exceptions.PolarsError, OSError) as exc:  # raised in the parsing thread
            self._error = exc


def _center(value: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in value.split(","))
    except ValueError as exc:
        raise click.BadParameter("expected LAT,LNG, e.g. -30.0346,-51.2177") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise click.BadParameter("latitude must be within ±90 and longitude within ±180")
    return lat, lon


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option(
    "--files", default=3, show_default=True, type=click.IntRange(min=1), help="Files to write."
)
@click.option(
    "--points",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Records per file.",
)
@click.option(
    "--center",
    default="-30.0346,-51.2177",
    show_default=True,
    callback=lambda ctx, param, value: _center(value),
    help="Centre LAT,LNG of the points (default Porto Alegre).",
)
@click.option(
    "--radius-km",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Points lie within this distance of the centre.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same files.")
@click.option(
    "--dirty-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of records missing one of their lines.",
)
@click.option(
    "--duplicate-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of coordinates repeating an earlier one.",
)
def sample(out_dir: str, center: tuple[float, float], **opts: Any) -> None:
    """Write realistic data_points files into OUT_DIR (CRLF, DMS text, 8 decimals)."""
    from etl4all.sample import write_sample

    paths = write_sample(Path(out_dir), center=center, **opts)
    click.echo(f"wrote {len(paths)} files with {opts['points']} records each to {out_dir}")
