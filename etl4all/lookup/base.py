"""The Lookup role: a fast pre-filter of coordinate keys already loaded."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import polars as pl

from etl4all.closing import Closes


@runtime_checkable
class Lookup(Closes, Protocol):
    """Which canonical coordinate keys are loaded; a context manager."""

    def present(self, keys: pl.Series) -> pl.Series:
        """Those of ``keys`` already recorded."""
        ...

    def add(self, keys: pl.Series) -> None:
        """Record ``keys`` (duplicates are tolerated)."""
        ...

    def ping(self) -> None:
        """One cheap round trip to the store (the start-up check calls it).

        Raises:
            ConfigError: the store refused the credentials.
            StoreError: the store cannot be reached.
        """
        ...
