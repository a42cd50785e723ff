"""The State role: claims and done-marks of files, and the geocode cache."""

from __future__ import annotations

import dataclasses
from typing import Protocol, Self, runtime_checkable

import polars as pl

from etl4all import frames

CACHE_KEYS_SCHEMA: dict[str, pl.DataType] = {"lat_key": pl.Int64(), "lon_key": pl.Int64()}
"""Cache keys: the coordinate as integers of 10**-precision degrees."""

CACHE_SCHEMA: dict[str, pl.DataType] = {**CACHE_KEYS_SCHEMA, **frames.GEOCODE_SCHEMA}
"""A cached geocode result."""


@dataclasses.dataclass(frozen=True)
class FileMark:
    """What a done file looked like: a changed size or mtime means new work."""

    size: int
    mtime: float
    sha256: str


@runtime_checkable
class State(Protocol):
    """Shared memory of the workers; a context manager."""

    def claim(self, key: str, ttl: float) -> str | None:
        """Take a lease on file ``key`` for ``ttl`` seconds; a token, or None if taken."""
        ...

    def renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend the lease on ``key`` held by ``token``; False if it was lost."""
        ...

    def release(self, key: str, token: str) -> None:
        """Give up the lease on ``key`` if ``token`` still holds it."""
        ...

    def done(self, keys: list[str]) -> dict[str, FileMark]:
        """The marks of those ``keys`` that are done."""
        ...

    def mark_done(self, marks: dict[str, FileMark]) -> None:
        """Remember files as done."""
        ...

    def done_count(self) -> int:
        """Number of files done."""
        ...

    def cache_get(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """Cached results (``CACHE_SCHEMA``) of ``keys`` (``CACHE_KEYS_SCHEMA``) in ``scope``.

        ``scope`` names the provider and precision, e.g. ``"google:6"``.
        """
        ...

    def cache_put(self, scope: str, rows: pl.DataFrame, ttl: float) -> None:
        """Cache ``rows`` (``CACHE_SCHEMA``) in ``scope`` for ``ttl`` seconds."""
        ...

    def cache_size(self) -> int:
        """Number of cached results (all scopes)."""
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


FileLedger = State
GeocodeCache = State
