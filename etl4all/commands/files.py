"""``etl4all parse`` and ``sample``: the commands that read or write data_points files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from etl4all.commands.common import handle_errors
from etl4all.errors import ConfigError

log = logging.getLogger(__name__)


WRITERS = {".parquet": "write_parquet", ".csv": "write_csv", ".ndjson": "write_ndjson"}
"""The formats ``parse -o`` writes, by file suffix."""


@click.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the points to this file, in the format its suffix names (.parquet, .csv or "
    ".ndjson), and the rejects beside it (NAME.rejects.SUFFIX). Its folder must exist.",
)
@handle_errors
def parse_command(files: tuple[str, ...], output: str | None) -> None:
    """Parse data_points FILES and report points and rejects per reason."""
    import polars as pl

    from etl4all import parse

    out = Path(output) if output else None
    if out is not None:
        if out.suffix.lower() not in WRITERS:
            raise ConfigError(
                f"-o {out}: name a .parquet, .csv or .ndjson file (the suffix picks the format)"
            )
        if not out.parent.is_dir():
            raise ConfigError(f"-o {out}: the folder {out.parent} does not exist; create it first")
    results = [parse.parse(Path(f).read_bytes(), Path(f).name) for f in files]
    points = pl.concat([r.points for r in results])
    rejects = pl.concat([r.rejects for r in results])
    click.echo(f"points   {points.height}")
    click.echo(f"rejects  {rejects.height}")
    for reason, count in sorted(rejects.get_column("reason").value_counts().rows()):
        click.echo(f"  {reason:<18} {count}")
        hints = rejects.filter(pl.col("reason") == reason, pl.col("detail").is_not_null())
        for detail, first, seen in (
            hints.group_by("detail", maintain_order=True)
            .agg(pl.format("{}:{}", "source", "line").first(), pl.len())
            .rows()
        ):
            click.echo(f"    {seen} × {detail}; first at {first}")
    if out is not None:
        write = WRITERS[out.suffix.lower()]
        rejects_path = out.with_name(out.stem + ".rejects" + out.suffix)
        getattr(points, write)(out)
        getattr(rejects, write)(rejects_path)
        click.echo(f"wrote {out} and {rejects_path}")


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
