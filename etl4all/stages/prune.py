"""Prune: the final item of a file version, removing what only the file's older versions held.

A prune of version ``v`` of file ``F`` drops F's memberships (``address_source``) that ``v``
lacks; a row goes only when no file holds its coordinate any more. Two forms, one per driver:
*by version* (``keys`` None: the embedded run, which applies a file's items in order) and *by
keys* (the broker, in any order with ``v``'s batches, cut into :class:`KeyRange` parts).
:class:`Revert` drops what an unfinished version added. Why: docs/architecture.md (A file's
life) and docs/guarantees.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import polars as pl

from etl4all import frames
from etl4all.broker import batch
from etl4all.broker.base import MAX_BYTES
from etl4all.sources.base import FileRef


@dataclasses.dataclass(frozen=True)
class Prune:
    """What file version ``version`` of ``ref`` removes of the file's older versions."""

    ref: FileRef
    version: int
    keys: pl.DataFrame | None
    """The version's points (``frames.POINTS_SCHEMA``; only the coordinates count), or None:
    by version (see the module docstring)."""
    last: bool = True
    """A prune is always its file's final item."""

    @property
    def source(self) -> str:
        """The file's name."""
        return self.ref.name


@dataclasses.dataclass(frozen=True)
class Revert:
    """Undo what an unfinished version of ``ref`` loaded: keep only what version ``to`` (the
    last one done) held. Made when that file is read again and held (it shrank to a prefix of
    version ``to``); ``version`` orders it after the unfinished one."""

    ref: FileRef
    version: int
    to: int
    last: bool = True

    @property
    def source(self) -> str:
        """The file's name."""
        return self.ref.name


@dataclasses.dataclass(frozen=True)
class KeyRange:
    """One part of a prune by keys: the coordinates kept within ``low <= key < high``."""

    keys: pl.DataFrame
    """``frames.PRUNE_SCHEMA`` rows, distinct and ascending."""
    low: str | None
    """Canonical key of the range's lower end (inclusive); None: open."""
    high: str | None
    """Canonical key of the range's upper end (exclusive); None: open."""


def key_ranges(
    source: str, points: pl.DataFrame, *, max_rows: int, max_bytes: int = MAX_BYTES
) -> Iterator[KeyRange]:
    """The parts of a prune by keys of file ``source`` holding ``points``: consecutive
    ranges that cover every coordinate, each holding at most ``max_rows`` keys (and fitting
    ``max_bytes`` once encoded); one open range when the file holds no points."""
    scaled = [frames.scaled_key(pl.col(c), frames.KEY_DECIMALS) for c in ("latitude", "longitude")]
    keys = (
        points.select(
            pl.lit(source, pl.String).alias("source"),
            pl.col("latitude").round(frames.KEY_DECIMALS),
            pl.col("longitude").round(frames.KEY_DECIMALS),
        )
        .unique(subset=["latitude", "longitude"])
        .sort(scaled)
    )
    parts = list(batch.chunks(keys, max_rows=max_rows, max_bytes=max_bytes)) or [keys]
    starts = [_first_key(part) for part in parts[1:]]
    for part, low, high in zip(parts, [None, *starts], [*starts, None], strict=True):
        yield KeyRange(frames.cast_frame(part, frames.PRUNE_SCHEMA), low, high)


def _first_key(part: pl.DataFrame) -> str:
    """The canonical key of the first row of ``part``."""
    return str(part.head(1).select(frames.coordinate_key()).item())
