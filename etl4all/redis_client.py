"""A Redis client and key prefix from a ``redis://`` URL: the connection both the Redis state
(:mod:`etl4all.state.redis`) and the fleet's quota (:mod:`etl4all.quota.redis`) open.

URL: ``redis://[:password@]host:6379/0?prefix=etl4all:`` (``rediss://`` for TLS); ``prefix``
starts every key, the other query options are redis-py's connection options. Driver:
``redis`` (``pip install 'etl4all[redis]'``); the client is thread-safe (a connection pool).
"""

from __future__ import annotations

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from etl4all import urls
from etl4all.errors import ConfigError
from etl4all.timeouts import timed_out

DEFAULT_PREFIX = "etl4all:"
"""Key prefix when the URL has no ``prefix=`` option."""

SOCKET_TIMEOUT = 30.0
"""Seconds a command waits for Redis's reply (``socket_timeout``)."""
CONNECT_TIMEOUT = 5.0
"""Seconds for the TCP connection to Redis (``socket_connect_timeout``)."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError,)
"""Every driver error the store translates (ConnectionError, TimeoutError, ResponseError…)."""


def describe(exc: BaseException, client: redis.Redis) -> str:
    """``{error type}: {text}``; for a timeout, the host, port and what timed out."""
    if isinstance(exc, redis.exceptions.TimeoutError):
        options = client.connection_pool.connection_kwargs
        host, port = str(options.get("host", "?")), options.get("port")
        if "connecting" in str(exc):  # redis-py's "Timeout connecting to server"
            seconds = options.get("socket_connect_timeout")
            return timed_out(
                host, port, "did not accept the connection", seconds, "socket_connect_timeout"
            )
        seconds = options.get("socket_timeout")
        return timed_out(host, port, "did not answer", seconds, "socket_timeout")
    return f"{type(exc).__name__}: {urls.redact(str(exc))}"


def connect(url: str) -> tuple[redis.Redis, str]:
    """A client (thread-safe, connecting on first use) and the key prefix of a Redis URL.

    A command that fails on a dead connection is tried once more on a fresh one.

    Raises:
        ConfigError: not a ``redis://`` URL, a bad database number or an unknown option.
    """
    parsed = urls.parse(url)
    safe_url = parsed.shown
    urls.check(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ConfigError(f"{safe_url}: a Redis state URL starts with redis://")
    if not parsed.host:
        raise ConfigError(f"{safe_url} names no host: write redis://host:6379/0")
    if parsed.path.strip("/") and not parsed.path.strip("/").isdigit():
        raise ConfigError(f"{safe_url}: the path is the database number, e.g. /0")
    prefix = parsed.options.get("prefix", DEFAULT_PREFIX)
    driver_url = parsed.with_query((k, v) for k, v in parsed.query if k != "prefix")
    try:
        pool = redis.ConnectionPool.from_url(
            driver_url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            # a pooled connection may have died with a restart or a failover: one more try,
            # at once, on a fresh one; a longer outage is the caller's (a StoreError)
            retry=Retry(NoBackoff(), 1),
        )
        pool.connection_class(**pool.connection_kwargs)  # checks the options, no I/O
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{safe_url}: {urls.redact(str(exc))}") from exc
    return redis.Redis.from_pool(pool), prefix  # closing the client closes its pool
