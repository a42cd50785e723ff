"""A Redis client and key prefix from a ``redis://`` URL: the connection both the Redis state
(:mod:`etl4all.state.redis`) and the fleet's quota (:mod:`etl4all.quota.redis`) open.

URL: ``redis://[:password@]host:6379/0?prefix=etl4all:``; ``prefix`` starts every key, the
other query options are redis-py's connection options. TLS: ``rediss://`` with the options
of :mod:`etl4all.tls` (``ssl_ca``, ``ssl_verify``, ``ssl_cert``, ``ssl_key``); the server's
certificate and host name are verified unless ``ssl_verify=false``, and a certificate refused
is a :class:`~etl4all.errors.StoreConfigError` on first use, not an outage. Driver:
``redis`` (``pip install 'etl4all[redis]'``); the client is thread-safe (a connection pool).
"""

from __future__ import annotations

import ssl
from typing import Any

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from etl4all import tls, urls
from etl4all.errors import ConfigError, StoreConfigError
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


class VerifiedSSLConnection(redis.SSLConnection):
    """redis-py's TLS connection, whose refused server certificate is a
    :class:`StoreConfigError` (redis-py would make it a ConnectionError, an outage)."""

    def _connect(self) -> Any:
        try:
            return super()._connect()
        except ssl.SSLCertVerificationError as exc:
            raise StoreConfigError(f"Redis: {tls.describe(exc, self.host, self.port)}") from exc


def _tls_options(parsed: urls.Url) -> dict[str, Any]:
    """redis-py's TLS keyword arguments for the :mod:`etl4all.tls` options of a ``rediss://``
    URL; none for ``redis://``.

    Raises:
        ConfigError: a TLS option on a ``redis://`` URL, or a bad TLS option or file.
    """
    given = sorted(k for k in parsed.options if k in tls.OPTIONS)
    if parsed.scheme == "redis":
        if given:
            raise ConfigError(f"{parsed.shown}: {', '.join(given)} need a rediss:// URL (TLS)")
        return {}
    settings = tls.Tls.from_options(parsed.options, parsed.shown)
    settings.context(parsed.shown)  # the files load: checked now, not at the first command
    return {
        "connection_class": VerifiedSSLConnection,
        "ssl_ca_certs": settings.ca,
        "ssl_certfile": settings.cert,
        "ssl_keyfile": settings.key,
        # stated, not left to redis-py's defaults (redis-py 5 checked no host name)
        "ssl_cert_reqs": "required" if settings.verify else "none",
        "ssl_check_hostname": settings.verify,
    }


def connect(url: str) -> tuple[redis.Redis, str]:
    """A client (thread-safe, connecting on first use) and the key prefix of a Redis URL.

    A command that fails on a dead connection is tried once more on a fresh one.

    Raises:
        ConfigError: not a ``redis://`` URL, a bad database number, an unknown option or a
            bad TLS option or file.
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
    tls_options = _tls_options(parsed)
    ours = ("prefix", *tls.OPTIONS)
    driver_url = parsed.with_query((k, v) for k, v in parsed.query if k not in ours)
    try:
        pool = redis.ConnectionPool.from_url(
            driver_url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            # a pooled connection may have died with a restart or a failover: one more try,
            # at once, on a fresh one; a longer outage is the caller's (a StoreError)
            retry=Retry(NoBackoff(), 1),
            **tls_options,
        )
        pool.connection_class(**pool.connection_kwargs)  # checks the options, no I/O
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{safe_url}: {urls.redact(str(exc))}") from exc
    return redis.Redis.from_pool(pool), prefix  # closing the client closes its pool
