"""The state roles: a file ledger (claims, done marks) and a geocode cache.

A backend may implement both (SQLite and Redis do); the wiring opens one store that serves
both as a :class:`StateStore`, and each stage sees only the role it uses.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import socket
from typing import Protocol, Self, runtime_checkable

import polars as pl

from etl4all import frames
from etl4all.errors import ConfigError

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
    partial_since: float | None = None
    """Set when the file was done without its cut-off last record (not final yet): since
    when (``time.time()``) this content has been seen. None: done completely."""


def checked_ttl(ttl: float) -> float:
    """``ttl`` if it is a positive, finite number of seconds (a lease or a cache entry).

    Raises:
        ConfigError: ``ttl`` is zero, negative, infinite or NaN.
    """
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ConfigError(f"a TTL must be a positive number of seconds, got {ttl!r}")
    return ttl


@runtime_checkable
class _Closes(Protocol):
    """What both roles share: a context manager that closes on exit."""

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...


@dataclasses.dataclass(frozen=True)
class Claim:
    """A lease held on a file, as ``etl4all status`` shows it."""

    owner: str
    """``host:pid`` of the worker holding it."""
    expires_in: float
    """Seconds until it expires unless renewed."""


def new_token() -> str:
    """A claim token that names its holder: ``host:pid/random``."""
    return f"{socket.gethostname()}:{os.getpid()}/{secrets.token_hex(16)}"


def owner(token: str) -> str:
    """The ``host:pid`` part of a :func:`new_token` token."""
    return token.rpartition("/")[0] or "?"


@runtime_checkable
class FileLedger(_Closes, Protocol):
    """Which files are done and which worker holds which file; a context manager."""

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

    def claims(self) -> dict[str, Claim]:
        """The leases held now, by file key (for status commands)."""
        ...


@runtime_checkable
class GeocodeCache(_Closes, Protocol):
    """Geocode results by coordinate key, per scope, with a TTL; a context manager."""

    def cache_get(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """Cached results (``CACHE_SCHEMA``) of ``keys`` (``CACHE_KEYS_SCHEMA``) in ``scope``.

        ``scope`` is ``provider:language:precision``, e.g. ``"google:pt-BR:6"``.
        """
        ...

    def cache_put(self, scope: str, rows: pl.DataFrame, ttl: float) -> None:
        """Cache ``rows`` (``CACHE_SCHEMA``) in ``scope`` for ``ttl`` seconds."""
        ...

    def cache_size(self) -> int:
        """Number of cached results (all scopes)."""
        ...


@runtime_checkable
class StateStore(FileLedger, GeocodeCache, Protocol):
    """One store serving both roles, as the wiring opens it."""
