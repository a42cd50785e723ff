"""Load stage: what reaches the warehouse, applied by :func:`apply`, the one function both
drivers call.

A load item is :class:`Addresses`, :class:`Rejects`, :class:`PrunePart`, :class:`PruneRejects`,
:class:`Finalize` or :class:`Undo`. Every item is idempotent, and one of an older file version
than the warehouse has seen changes nothing (it is *stale*). What each does:
docs/architecture.md (A file's life).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

import polars as pl

from etl4all import frames
from etl4all.counts import PROCESS, Counts
from etl4all.lookup.base import Lookup
from etl4all.stages.prune import Prune, Revert, key_ranges
from etl4all.warehouse.base import LoadResult, Warehouse

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Addresses:
    """Geocoded rows (``frames.ADDRESSES_SCHEMA``) of one file version (None: its current)."""

    frame: pl.DataFrame
    version: int | None = None


@dataclasses.dataclass(frozen=True)
class Rejects:
    """Rejects (``frames.REJECTS_SCHEMA``) of one file version (None: its current)."""

    frame: pl.DataFrame
    version: int | None = None


@dataclasses.dataclass(frozen=True)
class PrunePart:
    """A prune of version ``version`` of file ``source``: by version (``keys`` None), or the
    coordinates it keeps within ``low <= key < high`` (canonical keys)."""

    source: str
    version: int
    keys: pl.DataFrame | None = None
    """``frames.PRUNE_SCHEMA`` rows."""
    low: str | None = None
    high: str | None = None


@dataclasses.dataclass(frozen=True)
class PruneRejects:
    """Drop the rejects of file ``source`` older than version ``version``."""

    source: str
    version: int


@dataclasses.dataclass(frozen=True)
class Finalize:
    """End the prune by keys of version ``version`` of file ``source``: delete what its parts
    marked, and the file's rejects older than it."""

    source: str
    version: int


@dataclasses.dataclass(frozen=True)
class Undo:
    """Drop from file ``source`` what only its versions after ``to`` added (as version
    ``version``)."""

    source: str
    version: int
    to: int


LoadItem = Addresses | Rejects | PrunePart | PruneRejects | Finalize | Undo


@dataclasses.dataclass
class Applied:
    """What applying items did."""

    load: LoadResult = dataclasses.field(default_factory=LoadResult)
    rejects: int = 0
    """Reject rows recorded."""
    pruned: int = 0
    """Address rows deleted: no file holds their coordinate any more."""


def apply(
    item: LoadItem, warehouse: Warehouse, lookup: Lookup, counts: Counts = PROCESS
) -> Applied:
    """Commit ``item`` to the warehouse (one transaction, or two for addresses with invalid
    coordinates), counting the rows loaded and pruned in ``counts``.

    Raises:
        DataError: the warehouse refused a value (nothing committed).
        WarehouseError: the warehouse failed (nothing committed; retry).
    """
    if isinstance(item, Addresses):
        return _load(item, warehouse, lookup, counts.child())
    applied = _apply(item, warehouse)
    counts.add("rows_pruned", applied.pruned)
    return applied


def _apply(
    item: Rejects | PrunePart | PruneRejects | Finalize | Undo, warehouse: Warehouse
) -> Applied:
    """Commit ``item``, not addresses, to the warehouse."""
    if isinstance(item, Rejects):
        return Applied(rejects=warehouse.load_rejects(item.frame, version=item.version))
    if isinstance(item, PruneRejects):
        warehouse.prune_rejects(item.source, item.version)
        return Applied()
    if isinstance(item, Finalize):
        deleted = warehouse.finalize(item.source, item.version)
        if deleted:
            log.info("pruned file=%s rows=%d (no file holds them any more)", item.source, deleted)
        return Applied(pruned=deleted)
    if isinstance(item, Undo):
        deleted = warehouse.revert(item.source, item.version, item.to)
        log.info("undid an unfinished version of file=%s rows=%d", item.source, deleted)
        return Applied(pruned=deleted)
    keep = None
    if item.keys is not None:
        keep = item.keys.select(frames.coordinate_key().alias("key")).get_column("key")
    deleted = warehouse.prune(item.source, item.version, keep, low=item.low, high=item.high)
    if deleted:
        log.info("pruned file=%s rows=%d (no file holds them any more)", item.source, deleted)
    return Applied(pruned=deleted)


def prune_items(
    prune: Prune | Revert, *, max_rows: int
) -> Iterator[PrunePart | PruneRejects | Finalize | Undo]:
    """The load items of ``prune``: by version, its one part and its rejects; by keys, one
    part per key range of at most ``max_rows`` keys, then its finalize; a revert is one."""
    if isinstance(prune, Revert):
        yield Undo(prune.source, prune.version, prune.to)
    elif prune.keys is None:
        yield PrunePart(prune.source, prune.version)
        yield PruneRejects(prune.source, prune.version)
    else:
        for part in key_ranges(prune.source, prune.keys, max_rows=max_rows):
            yield PrunePart(prune.source, prune.version, part.keys, part.low, part.high)
        yield Finalize(prune.source, prune.version)


def _load(item: Addresses, warehouse: Warehouse, lookup: Lookup, batch: Counts) -> Applied:
    """Insert the new coordinates of ``item`` and update the known ones, counting them in
    ``batch``.

    Rows whose coordinate is not a real one (NaN, infinite, out of range) are kept in the
    ``reject`` table (``invalid_coordinate``) instead; the rest of the batch is loaded.
    """
    addresses, invalid = frames.split_invalid_coordinates(item.frame)
    applied = Applied()
    if invalid.height:
        log.warning("%d rows have an invalid coordinate; rejected", invalid.height)
        applied.rejects = warehouse.load_rejects(invalid, version=item.version)
        batch.add("rejects", invalid.height, stage="load", reason="invalid_coordinate")
    if addresses.is_empty():
        return applied
    started = time.perf_counter()
    rows = frames.canonical(addresses).with_columns(_key=frames.coordinate_key())
    keys = rows.get_column("_key")
    known = keys.is_in(lookup.present(keys).implode())
    inserts, updates = rows.filter(~known).drop("_key"), rows.filter(known).drop("_key")
    result = warehouse.load(inserts, updates, version=item.version)
    if not result.stale:
        lookup.add(keys.filter(~known))
    for kind in ("inserted", "updated", "unchanged"):
        batch.add("rows", getattr(result, kind), kind=kind)
    batch.add("rows_stale", result.stale)
    seconds = time.perf_counter() - started
    log.info(
        "loaded rows=%d inserted=%d updated=%d unchanged=%d stale=%d seconds=%.2f",
        rows.height,
        batch.get("rows", kind="inserted"),
        batch.get("rows", kind="updated"),
        batch.get("rows", kind="unchanged"),
        batch.get("rows_stale"),
        seconds,
        extra={"stage": "load", "rows": rows.height, "seconds": round(seconds, 3)},
    )
    applied.load = result
    return applied
