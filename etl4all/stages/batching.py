"""Batches of one file as its pieces are parsed: what a file's unit of work hands out.

:func:`file_batches` turns the parsed pieces of a file (:mod:`~etl4all.parsing.reading`)
into :class:`PointBatch` items of at most ``batch_rows`` points whose encoded body fits
``max_bytes``, numbered across the file (deterministic ids), without holding more than one
piece's frames. A :class:`PointBatch` is plain data: marking it done is the unit of work's
job (:mod:`etl4all.stages.filework`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import polars as pl

from etl4all import frames
from etl4all.broker import batch
from etl4all.broker.base import MAX_BYTES
from etl4all.parsing import parse
from etl4all.sources.base import FileRef


@dataclasses.dataclass(frozen=True)
class PointBatch:
    """One chunk of a file version's points, with the parse rejects of the part of the file
    it was parsed from (the first batch of each piece carries them)."""

    ref: FileRef
    index: int
    batch_id: str
    """Deterministic: the file's content hash and ``index``."""
    version: int
    """The file version it belongs to (:mod:`etl4all.stages.versions`)."""
    points: pl.DataFrame
    rejects: pl.DataFrame
    share: float
    """Bytes of the file this batch stands for (for a progress bar)."""
    last: bool = False
    """The file's final item: marking it done marks the file done."""

    @property
    def source(self) -> str:
        """The file's name (the ``source`` column of its rows)."""
        return self.ref.name

    @property
    def rejects_id(self) -> str:
        """The id of this batch's rejects when they travel on their own."""
        return f"{self.batch_id}.rejects"


def file_batches(
    parsed: Iterable[tuple[int, parse.Parsed]],
    *,
    ref: FileRef,
    sha256: str,
    version: int,
    batch_rows: int,
    max_bytes: int = MAX_BYTES,
) -> Iterator[PointBatch]:
    """The batches of one file version from its parsed pieces (size in bytes, frames).

    Each piece's rejects ride with its first batch (a piece with rejects and no points gets an
    empty batch to carry them); a file with nothing in it gives no batch.
    """
    index = 0
    for size, part in parsed:
        slices = list(batch.chunks(part.points, max_rows=batch_rows, max_bytes=max_bytes))
        if not slices and part.rejects.height:
            slices = [part.points]
        for number, points in enumerate(slices):
            yield PointBatch(
                ref=ref,
                index=index,
                batch_id=batch.batch_id(sha256, index),
                version=version,
                points=points,
                rejects=part.rejects if number == 0 else part.rejects.clear(),
                share=size / len(slices),
            )
            index += 1


def empty_batch(ref: FileRef, *, sha256: str, version: int) -> PointBatch:
    """The one batch of a file with nothing in it."""
    return PointBatch(
        ref=ref,
        index=0,
        batch_id=batch.batch_id(sha256, 0),
        version=version,
        points=frames.empty(frames.POINTS_SCHEMA),
        rejects=frames.empty(frames.REJECTS_SCHEMA),
        share=0.0,
    )
