"""The Lookup role: a fast pre-filter of coordinate keys already loaded."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import polars as pl


@runtime_checkable
class Lookup(Protocol):
    """Which canonical coordinate keys are loaded; a context manager."""

    def present(self, keys: pl.Series) -> pl.Series:
        """Those of ``keys`` already recorded."""
        ...

    def add(self, keys: pl.Series) -> None:
        """Record ``keys`` (duplicates are tolerated)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
