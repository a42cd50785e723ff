"""Lookup that asks the warehouse itself (used when no lookup URL is set)."""

from __future__ import annotations

import polars as pl

from etl4all.closing import Closing
from etl4all.warehouse.base import Warehouse


class WarehouseLookup(Closing):
    """Answers ``present`` from the warehouse's unique key; ``add`` has nothing to do."""

    def __init__(self, *, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    def present(self, keys: pl.Series) -> pl.Series:
        """Those of ``keys`` already in the warehouse."""
        return self._warehouse.existing(keys)

    def add(self, keys: pl.Series) -> None:
        """Nothing: the warehouse already holds what it loaded."""

    def ping(self) -> None:
        """Nothing: the warehouse has its own check."""

    def close(self) -> None:
        """Nothing to release: the warehouse is closed by its owner."""
