"""State in Redis: shared by every replica of the services mode.

URL: ``redis://[:password@]host:6379/0?prefix=etl4all:`` (``rediss://`` for TLS). Options:
``prefix`` (default ``etl4all:``) and redis-py's connection options: ``socket_connect_timeout``
(default 5 s) and ``socket_timeout`` (default 30 s, each reply). Driver: ``redis``
(``pip install 'etl4all[redis]'``), thread-safe. Leases, done marks and the geocode cache are
keys under the prefix; its scripts reload themselves after a restart. Refused credentials or a
missing database number are a ``StoreConfigError``, other errors a retryable ``StoreError``.
The keys and why: docs/backends.md (State).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import redis
import redis.backoff
import redis.exceptions

from etl4all import urls
from etl4all.closing import Closing
from etl4all.errors import StoreConfigError, StoreError
from etl4all.redis_client import REDIS_ERRORS, connect, describe
from etl4all.state.base import Claim, FileMark, Holder, checked_ttl, new_token, owner
from etl4all.state.cache import PayloadCache

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

CHUNK = 10_000
"""Keys per MGET command and commands per pipeline round trip."""
_REFUSED = (redis.exceptions.AuthenticationError, redis.exceptions.NoPermissionError)
"""Driver errors that retrying cannot fix: StoreConfigError (a ConfigError)."""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

_RENEW = """
local held = redis.call('get', KEYS[1])
if held == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
if held == false then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

_CLAIM = """
local held = redis.call('get', KEYS[1])
if held == false or held == ARGV[2] then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[3])
    return 1
end
return 0
"""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_NO_DATABASE = "DB index is out of range"
"""What Redis answers a SELECT of a database it does not have: a StoreConfigError."""


class RedisState(PayloadCache, Closing):
    """Claims, done files and the geocode cache in Redis."""

    def __init__(self, *, url: str) -> None:
        """Parse the URL and build the client; the connection opens on first use.

        Raises:
            ConfigError: not a ``redis://`` URL, a bad database number or an unknown option.
        """
        self._safe_url = urls.redact(url)
        self._client, self.prefix = connect(url)
        self._release = self._client.register_script(_RELEASE)
        self._renew = self._client.register_script(_RENEW)
        self._take_over = self._client.register_script(_CLAIM)

    def __repr__(self) -> str:
        return f"RedisState({self._safe_url!r})"

    # -- claims ---------------------------------------------------------------------------

    def claim(self, key: str, ttl: float, *, replace: str | None = None) -> str | None:
        """Take a lease on ``key`` for ``ttl`` seconds (or one ``replace`` holds); a token, or
        None if someone holds it."""
        ttl_ms = _milliseconds(ttl)
        token = new_token()
        log.debug("claim %sclaim:%s on %s", self.prefix, key, self._safe_url)
        with self._errors(f"claim {key}"):
            if replace is None:
                won = self._client.set(self._claim_key(key), token, nx=True, px=ttl_ms)
            else:
                won = self._take_over(keys=[self._claim_key(key)], args=[token, replace, ttl_ms])
        return token if won else None

    def holder(self, key: str) -> Holder | None:
        """Who holds the lease on ``key`` now."""
        name = self._claim_key(key)
        with self._errors(f"read the claim on {key}"), self._client.pipeline() as pipe:
            pipe.get(name)
            pipe.pttl(name)
            token, ms = pipe.execute()
        return None if token is None else Holder(str(token), max(int(ms), 0) / 1000)

    def renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend the lease on ``key`` to ``ttl`` seconds from now if ``token`` still holds it.

        Returns:
            False when another worker holds it now: give up the work. (A lease Redis forgot
            is taken again.)
        """
        ttl_ms = _milliseconds(ttl)
        log.debug("renew %sclaim:%s on %s", self.prefix, key, self._safe_url)
        with self._errors(f"renew the claim on {key}"):
            kept = self._renew(keys=[self._claim_key(key)], args=[token, ttl_ms])
        return bool(kept)

    def release(self, key: str, token: str) -> None:
        """Give up the lease on ``key`` if ``token`` still holds it."""
        log.debug("release %sclaim:%s on %s", self.prefix, key, self._safe_url)
        with self._errors(f"release the claim on {key}"):
            self._release(keys=[self._claim_key(key)], args=[token])

    # -- done files -----------------------------------------------------------------------

    def done(self, keys: list[str]) -> dict[str, FileMark]:
        """The marks of those ``keys`` that are done."""
        if not keys:
            return {}
        log.debug("HMGET %sdone (%d keys) on %s", self.prefix, len(keys), self._safe_url)
        with self._errors(f"read {len(keys)} done marks"):
            values = self._client.hmget(self.prefix + "done", keys)
        marks = {}
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                marks[key] = self._parse_mark(key, str(value))
        return marks

    def mark_done(self, marks: dict[str, FileMark]) -> None:
        """Remember files as done (a later mark of the same key replaces the earlier one)."""
        if not marks:
            return
        mapping: dict[Any, str] = {key: mark.to_json() for key, mark in marks.items()}
        log.debug("HSET %sdone (%d keys) on %s", self.prefix, len(mapping), self._safe_url)
        with self._errors(f"mark {len(mapping)} files done"):
            self._client.hset(self.prefix + "done", mapping=mapping)

    def done_count(self) -> int:
        """Number of files done."""
        with self._errors("count the done files"):
            return int(self._client.hlen(self.prefix + "done"))

    def claims(self) -> dict[str, Claim]:
        """The leases held now (a SCAN, meant for status commands)."""
        start = self._claim_key("")
        with self._errors("list the claims"):
            names = list(self._client.scan_iter(match=_GLOB_SPECIAL.sub(r"\\\1", start) + "*"))
            with self._client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(name)
                    pipe.pttl(name)
                answers = pipe.execute()
        pairs = zip(answers[::2], answers[1::2], strict=True)
        return {
            name[len(start) :]: Claim(owner(token), max(ms, 0) / 1000)
            for name, (token, ms) in zip(names, pairs, strict=True)
            if token is not None
        }

    # -- geocode cache --------------------------------------------------------------------

    def _fetch(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """The payloads of ``keys`` in ``scope``: pipelined MGETs (Redis expires the rest)."""
        import polars as pl

        names = keys.select(self._geo_key(scope)).to_series().to_list()
        log.debug("MGET %d cache keys scope=%s on %s", len(names), scope, self._safe_url)
        with self._errors(f"read {len(names)} cache keys"):
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(names), CHUNK):
                pipe.mget(names[start : start + CHUNK])
            values = [value for chunk in pipe.execute() for value in chunk]
        return keys.with_columns(payload=pl.Series(values, dtype=pl.String)).filter(
            pl.col("payload").is_not_null()
        )

    def _store(self, scope: str, payloads: pl.DataFrame, ttl: float) -> None:
        """``SET PX`` each payload in ``scope``, pipelined by ``CHUNK`` commands."""
        ttl_ms = _milliseconds(ttl)
        names = payloads.select(self._geo_key(scope)).to_series().to_list()
        values = payloads.get_column("payload").to_list()
        log.debug("SET PX %d cache keys scope=%s on %s", len(names), scope, self._safe_url)
        with self._errors(f"cache {len(names)} rows"):
            for start in range(0, len(names), CHUNK):
                pipe = self._client.pipeline(transaction=False)
                for name, value in zip(
                    names[start : start + CHUNK], values[start : start + CHUNK], strict=True
                ):
                    pipe.set(name, value, px=ttl_ms)
                pipe.execute()

    def cache_size(self) -> int:
        """Number of cached results (all scopes); a SCAN, meant for status commands."""
        match = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "geo:*"
        log.debug("SCAN %s on %s", match, self._safe_url)
        with self._errors("count the cache"):
            return sum(1 for _ in self._client.scan_iter(match=match, count=1000))

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _parse_mark(self, key: str, value: str) -> FileMark:
        """A done mark: JSON, or an older release's ``size|mtime|sha256[|partial_since]``."""
        try:
            if value.startswith("{"):
                return FileMark.from_json(value)
            size, mtime, sha256, *partial = value.split("|")
            if len(partial) > 1:
                raise ValueError("too many fields")
            since = float(partial[0]) if partial else None
            return FileMark(int(size), float(mtime), sha256, since)
        except (ValueError, TypeError) as exc:
            raise StoreError(
                f"Redis state {self._safe_url}: malformed done mark of {key}: {value!r}; "
                f"delete field {key!r} of hash {self.prefix}done to process the file again"
            ) from exc

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}claim:{key}"

    def _geo_key(self, scope: str) -> pl.Expr:
        """``{prefix}geo:{scope}:{lat_key}:{lon_key}`` of each row."""
        import polars as pl

        return pl.concat_str(
            pl.lit(f"{self.prefix}geo:{scope}:"),
            pl.col("lat_key").cast(pl.String),
            pl.lit(":"),
            pl.col("lon_key").cast(pl.String),
        ).alias("name")

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate redis-py errors into :class:`StoreError`, naming the redacted URL."""
        try:
            yield
        except REDIS_ERRORS as exc:
            cls, hint = StoreError, "is Redis running and reachable?"
            if isinstance(exc, _REFUSED):
                cls, hint = StoreConfigError, "check the user and password in the URL"
            elif isinstance(exc, redis.exceptions.ResponseError) and _NO_DATABASE in str(exc):
                cls, hint = (
                    StoreConfigError,
                    (
                        "the server has no database of that number (its `databases` setting, 16 "
                        "by default, numbers them from 0): give another /N in the URL"
                    ),
                )
            elif isinstance(exc, redis.exceptions.ResponseError):
                hint = "check the Redis server's version and configuration"
            raise cls(
                f"Redis state {self._safe_url} failed to {action}: "
                f"{describe(exc, self._client)}; {hint}"
            ) from exc


def _milliseconds(ttl: float) -> int:
    """``ttl`` seconds as whole milliseconds (at least 1).

    Raises:
        ConfigError: ``ttl`` is not a positive number of seconds.
    """
    return max(1, round(checked_ttl(ttl) * 1000))
