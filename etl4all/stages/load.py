"""Load stage: addresses → warehouse, one row per distinct coordinate.

The lookup splits a batch into inserts and updates with one query; the warehouse's unique
key stays the truth, so a stale lookup never creates a duplicate. New keys are recorded in
the lookup only after the warehouse committed them.
"""

from __future__ import annotations

import logging
import time

import polars as pl

from etl4all import frames, metrics
from etl4all.lookup.base import Lookup
from etl4all.warehouse.base import LoadResult, Warehouse

log = logging.getLogger(__name__)


def load_frame(addresses: pl.DataFrame, warehouse: Warehouse, lookup: Lookup) -> LoadResult:
    """Insert new coordinates of ``addresses`` and update known ones.

    Rows whose coordinate is not a real one (NaN, infinite, out of range) are kept in the
    ``reject`` table (``invalid_coordinate``) instead; the rest of the batch is loaded.

    Raises:
        DataError: the warehouse refused a value (nothing committed).
        WarehouseError: the warehouse failed (nothing committed; retry).
    """
    addresses, invalid = frames.split_invalid_coordinates(addresses)
    if invalid.height:
        log.warning("%d rows have an invalid coordinate; rejected", invalid.height)
        warehouse.load_rejects(invalid)
        metrics.count_rejects("load", {"invalid_coordinate": invalid.height})
    if addresses.is_empty():
        return LoadResult()
    started = time.perf_counter()
    rows = frames.canonical(addresses).with_columns(_key=frames.coordinate_key())
    keys = rows.get_column("_key")
    known = rows.get_column("_key").is_in(lookup.present(keys).implode())
    inserts, updates = rows.filter(~known).drop("_key"), rows.filter(known).drop("_key")
    result = warehouse.load(inserts, updates)
    lookup.add(keys.filter(~known))
    metrics.count_loaded(result)
    seconds = time.perf_counter() - started
    log.info(
        "loaded rows=%d inserted=%d updated=%d unchanged=%d seconds=%.2f",
        rows.height,
        result.inserted,
        result.updated,
        result.unchanged,
        seconds,
        extra={"stage": "load", "rows": rows.height, "seconds": round(seconds, 3)},
    )
    return result
