"""The state roles: a file ledger (claims, done marks) and a geocode cache.

A backend may implement both (SQLite and Redis do); the wiring opens one store that serves
both as a :class:`StateStore`, and each stage sees only the role it uses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import socket
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from etl4all import processes
from etl4all.closing import Closes
from etl4all.errors import ConfigError

if TYPE_CHECKING:
    import polars as pl


@dataclasses.dataclass(frozen=True)
class FileMark:
    """What a done file looked like: a changed size, mtime or etag means new work."""

    size: int
    mtime: float
    sha256: str
    partial_since: float | None = None
    """Set when the file was done without its cut-off last record (not final yet): since
    when (``time.time()``) this content has been seen. None: done completely."""
    version: int = 0
    """The version the file was loaded as (:mod:`etl4all.stages.versions`); 0: unknown (a
    mark of an older release)."""
    points: int = 0
    """Points of that version (a prune of it removes at most this many rows)."""
    checkpoints: str = ""
    """Hashes of the version's leading bytes (:mod:`etl4all.fingerprint`): tell a strict
    prefix of it (an upload in progress, a failed transfer) from a new version."""
    unfinished: int = 0
    """A later version whose work started and did not finish (0: none): some of its batches
    may be in the warehouse, so the next read of the file must undo or supersede them."""
    etag: str = ""
    """The store's tag of the content as listed (``FileRef.etag``; empty: none)."""

    def to_json(self) -> str:
        """The mark as one JSON object (how the stores keep it)."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FileMark:
        """A mark written by :meth:`to_json`; fields added later take their defaults.

        Raises:
            ValueError: not such an object.
        """
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise ValueError(f"a done mark is a JSON object, got {text[:40]!r}")
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in fields.items() if name in known})


def checked_ttl(ttl: float) -> float:
    """``ttl`` if it is a positive, finite number of seconds (a lease or a cache entry).

    Raises:
        ConfigError: ``ttl`` is zero, negative, infinite or NaN.
    """
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ConfigError(f"a TTL must be a positive number of seconds, got {ttl!r}")
    return ttl


@dataclasses.dataclass(frozen=True)
class Claim:
    """A lease held on a file, as ``etl4all status`` shows it."""

    owner: str
    """``host:pid`` of the worker holding it."""
    expires_in: float
    """Seconds until it expires unless renewed."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a claim, as a claimer that lost sees it."""

    token: str
    """The holder's :func:`new_token`."""
    expires_in: float
    """Seconds until the claim expires unless renewed."""


def new_token() -> str:
    """A claim token that names its holder: ``host:pid/start.random``.

    ``start`` is when the process started (:func:`etl4all.processes.started`), so that a
    claim left by a dead process is told apart from one of a new process with its pid.
    """
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}/{processes.started(pid)}.{secrets.token_hex(12)}"


def owner(token: str) -> str:
    """The ``host:pid`` part of a :func:`new_token` token."""
    return token.rpartition("/")[0] or "?"


@runtime_checkable
class FileLedger(Closes, Protocol):
    """Which files are done and which worker holds which file; a context manager."""

    def claim(self, key: str, ttl: float, *, replace: str | None = None) -> str | None:
        """Take a lease on file ``key`` for ``ttl`` seconds; a token, or None if taken.

        With ``replace``, a lease still held by that token is taken too (its holder died).
        """
        ...

    def holder(self, key: str) -> Holder | None:
        """Who holds the lease on ``key`` now; None when nobody does."""
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
class GeocodeCache(Closes, Protocol):
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
