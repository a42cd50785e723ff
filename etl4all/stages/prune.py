"""Prune: when a file changed after it was loaded, what only its earlier version produced goes.

The extract stage attaches a :class:`Prune` to the last batch of a file it reads again with
content other than its done mark recorded (unless the earlier version is a plain prefix of
this one whose loaded records all stand unchanged, as when an upload grows): the coordinates
and parse rejects of the version just read. Once they are applied, no address row whose
provenance (``source_file``) is that file keeps a coordinate the file no longer holds, and no
parse reject of the file remains that the new version does not have.

A prune only deletes what the new version lacks, so it may run before or after the new
version's rows are loaded, any number of times. It is cut into :class:`KeyRange` parts by
coordinate (latitude, then longitude): each part holds the new version's coordinates within
its range and deletes only within it, so any file's prune fits in messages of bounded size and
the parts are independent. The embedded run applies them inline with :func:`prune_file`; the
broker extractor publishes them to the addresses queue and the loader applies each one. The
lookup may still list a pruned key; that is harmless, as for any stale lookup: a later load of
that coordinate goes down the update path and is inserted.

Limits, kept on purpose (the cheap cases are covered, these would need a per-file index):
- the warehouse keeps one provenance per coordinate, the smallest (file, line): a coordinate
  the file dropped that a file with a larger name also holds loses its row until that other
  file is loaded again;
- geocoder rejects (``not_geocoded``, ``geocode_failed``...) of the file are kept;
- in services mode a prune of an older version applied after a newer version's rows (a
  message held back for minutes) deletes what only the newer version added, and an older
  version's batch loaded after the newer version's prune comes back. A re-read that merely
  appends (an upload that stalled) publishes no prune at all.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import polars as pl

from etl4all import batch, frames, parse
from etl4all.warehouse.base import Warehouse

log = logging.getLogger(__name__)

REASONS = parse.REASONS
"""The reject reasons a prune looks at: the parser's (the geocoder's are kept)."""


@dataclasses.dataclass(frozen=True)
class Prune:
    """What a file's new version holds: anything else the file produced goes."""

    source: str
    points: pl.DataFrame
    """The new version's points (``frames.POINTS_SCHEMA``; only the coordinates count)."""
    rejects: pl.DataFrame
    """The new version's parse rejects (``frames.REJECTS_SCHEMA``)."""


@dataclasses.dataclass(frozen=True)
class KeyRange:
    """One part of a prune: the coordinates kept within ``low <= key < high``."""

    keys: pl.DataFrame
    """``frames.PRUNE_SCHEMA`` rows, distinct and ascending."""
    low: str | None
    """Canonical key of the range's lower end (inclusive); None: open."""
    high: str | None
    """Canonical key of the range's upper end (exclusive); None: open."""


def key_ranges(
    prune: Prune, *, max_rows: int, max_bytes: int = batch.MAX_BYTES
) -> Iterator[KeyRange]:
    """The parts of ``prune``: consecutive ranges that cover every coordinate, each holding at
    most ``max_rows`` keys (and fitting ``max_bytes`` once encoded); one open range when the
    file holds no points."""
    scaled = [frames.scaled_key(pl.col(c), frames.KEY_DECIMALS) for c in ("latitude", "longitude")]
    keys = (
        prune.points.select(
            pl.lit(prune.source, pl.String).alias("source"),
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


def prune_range(warehouse: Warehouse, source: str, part: KeyRange) -> int:
    """Apply one part of a prune of file ``source``; the address rows deleted."""
    keep = part.keys.select(frames.coordinate_key().alias("key")).get_column("key")
    deleted = warehouse.prune(source, keep, low=part.low, high=part.high)
    if deleted:
        log.info("pruned file=%s rows=%d (no longer in the file)", source, deleted)
    return deleted


def prune_rejects(warehouse: Warehouse, source: str, rejects: pl.DataFrame) -> int:
    """Delete the parse rejects of file ``source`` that ``rejects`` (its new version's) lacks."""
    deleted = warehouse.prune_rejects(source, rejects, REASONS)
    if deleted:
        log.info("pruned file=%s rejects=%d (no longer in the file)", source, deleted)
    return deleted


def prune_file(prune: Prune, warehouse: Warehouse, *, max_rows: int) -> tuple[int, int]:
    """Apply a whole prune inline (embedded run): (address rows, rejects) deleted."""
    rows = sum(
        prune_range(warehouse, prune.source, part) for part in key_ranges(prune, max_rows=max_rows)
    )
    return rows, prune_rejects(warehouse, prune.source, prune.rejects)


def _first_key(part: pl.DataFrame) -> str:
    """The canonical key of the first row of ``part``."""
    return str(part.head(1).select(frames.coordinate_key()).item())
