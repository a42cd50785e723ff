"""The Lookup role: a fast pre-filter of coordinate keys already loaded."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

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

    def ping(self) -> None:
        """One cheap round trip to the store (the start-up check calls it).

        Raises:
            ConfigError: the store refused the credentials.
            StoreError: the store cannot be reached.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...
