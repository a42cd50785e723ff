"""Batches of one file as its pieces are parsed: the extract stage's output, a file at a time.

:func:`file_batches` turns the parsed pieces of a file (:func:`etl4all.reading.parse_pieces`)
into :class:`PointBatch` items of at most ``batch_rows`` points whose encoded body fits
``max_bytes``, numbered across the file (deterministic ids), without holding more than one
piece's frames: the last batch is found by holding one batch back.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl

from etl4all import batch, frames, metrics, parse
from etl4all.sources.base import FileRef
from etl4all.stages.prune import Prune
from etl4all.state.base import FileLedger, FileMark

if TYPE_CHECKING:
    from etl4all.stages.extract import ExtractConfig, ExtractStats

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PointBatch:
    """One chunk of a file's points, with the parse rejects of the part of the file it was
    parsed from (the first batch of each piece carries them; see :mod:`etl4all.reading`)."""

    ref: FileRef
    index: int
    batch_id: str
    """Deterministic: the file's content hash and ``index``."""
    points: pl.DataFrame
    rejects: pl.DataFrame
    last: bool
    """The file's last batch: committing it marks the file done."""
    share: float
    """Bytes of the file this batch stands for (for a progress bar)."""
    mark: FileMark
    ledger: FileLedger = dataclasses.field(repr=False)
    prune: Prune | None = None
    """On the last batch of a file that changed after it was loaded: apply it (after or
    before this batch's rows, either way) before committing."""

    @property
    def rejects_id(self) -> str:
        """The id of this batch's rejects when they travel on their own."""
        return f"{self.batch_id}.rejects"

    def commit(self) -> None:
        """Say that this batch's effects are committed; the last one marks the file done."""
        if self.last:
            self.ledger.mark_done({self.ref.key: self.mark})
            log.debug("file=%s done", self.ref.name)


def file_batches(
    parsed: Iterator[tuple[int, parse.Parsed]],
    *,
    ref: FileRef,
    mark: FileMark,
    config: ExtractConfig,
    ledger: FileLedger,
    stats: ExtractStats,
    pruning: bool,
) -> Iterator[PointBatch]:
    """The batches of one file from its parsed pieces (size in bytes, frames), counted in
    ``stats``. Each piece's rejects ride with its first batch (a piece with rejects and no
    points gets an empty batch to carry them); the last batch carries a :class:`Prune` of the
    whole file when ``pruning``, and a file with nothing in it gets one empty batch, so that
    committing it marks the file done."""
    started = time.perf_counter()
    points_seen = 0
    reasons: collections.Counter[str] = collections.Counter()
    kept: list[parse.Parsed] = []
    held: tuple[pl.DataFrame, pl.DataFrame, float] | None = None
    index = 0

    def make(held: tuple[pl.DataFrame, pl.DataFrame, float], *, last: bool) -> PointBatch:
        points, rejects, share = held
        stats.batches += 1
        prune = None
        if last and pruning:
            prune = Prune(
                ref.name,
                pl.concat([part.points for part in kept]) if kept else points,
                pl.concat([part.rejects for part in kept]) if kept else rejects,
            )
        return PointBatch(
            ref=ref,
            index=index,
            batch_id=batch.batch_id(mark.sha256, index),
            points=points,
            rejects=rejects,
            last=last,
            share=share,
            mark=mark,
            ledger=ledger,
            prune=prune,
        )

    for size, part in parsed:
        points_seen += part.points.height
        reasons.update(part.rejects.get_column("reason").to_list())
        if pruning:
            kept.append(part)
        slices = list(
            batch.chunks(part.points, max_rows=config.batch_rows, max_bytes=config.max_bytes)
        )
        if not slices and part.rejects.height:
            slices = [part.points]
        for number, points in enumerate(slices):
            if held is not None:
                yield make(held, last=False)
                index += 1
            held = (
                points,
                part.rejects if number == 0 else part.rejects.clear(),
                size / len(slices),
            )
    _log_parsed(ref.name, points_seen, reasons, time.perf_counter() - started)
    stats.points += points_seen
    stats.rejects += reasons
    metrics.count_file("extract", points_seen, reasons)
    if held is None:
        held = (frames.empty(frames.POINTS_SCHEMA), frames.empty(frames.REJECTS_SCHEMA), 0.0)
    yield make(held, last=True)


def _log_parsed(name: str, points: int, reasons: collections.Counter[str], seconds: float) -> None:
    """Log what parsing a file found."""
    rejects = sum(reasons.values())
    if rejects:
        log.warning(
            "rejects file=%s count=%d reasons=%s",
            name,
            rejects,
            ",".join(f"{reason}:{n}" for reason, n in reasons.most_common()),
        )
    log.info(
        "parsed file=%s points=%d rejects=%d seconds=%.3f",
        name,
        points,
        rejects,
        seconds,
        extra={"stage": "extract", "file": name, "rows": points, "seconds": round(seconds, 3)},
    )
