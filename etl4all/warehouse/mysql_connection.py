"""MySQL / MariaDB connections for the warehouse: the URL, connecting, error mapping.

:class:`Dsn` is the parsed ``mysql://`` URL (see :mod:`etl4all.warehouse.mysql` for its
form and options). :func:`connect` opens a PyMySQL connection with ``LOAD DATA LOCAL``
allowed and checked, :func:`open_session` any other (reads: :mod:`etl4all.warehouse.mysql_read`).
:func:`errors` is the one translation of PyMySQL's errors.

Timeouts: ``connect_timeout`` bounds the TCP connection and, separately, the server's greeting,
the login and the session set-up; then ``read_timeout`` and ``write_timeout`` bound each wait
for the server during a query (see :data:`QUERY_TIMEOUT` for why they are long). A server that
accepts connections and never answers is thus a :class:`~etl4all.errors.WarehouseError` naming
the host, port and what timed out, within about twice ``connect_timeout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import pymysql

from etl4all import tls, urls
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.timeouts import timed_out
from etl4all.tls import Tls

LOCAL_INFILE_HINT = (
    "LOAD DATA LOCAL is disabled on the server: enable local_infile on the server "
    "(SET GLOBAL local_infile=1 / --local-infile=1)"
)
_OPTIONS = {"connect_timeout", "read_timeout", "write_timeout", "ssl", *tls.OPTIONS}
CONNECT_TIMEOUT = 10.0
"""Seconds for the TCP connection, then for the greeting, login and set-up (``connect_timeout``)."""
QUERY_TIMEOUT = 300.0
"""Seconds one read or write of a query may wait for the server (``read_timeout``,
``write_timeout``). Long on purpose: the server answers a ``LOAD DATA``, a joined ``UPDATE``
or a prune only once the whole statement is done (seconds for a 100 000-row batch, minutes for
batches ten times that on a busy server), and a row lock is waited for up to InnoDB's
``innodb_lock_wait_timeout`` (50 s by default), after which the server answers with its own,
clearer error. A server that never answers at all is caught much sooner, by
``connect_timeout`` on the handshake."""
_DATABASE = re.compile(r"^[A-Za-z0-9_$]{1,64}$")

_LOCAL_INFILE = {1148, 3948, 2068}
_LOGIN = {1045, 1698}
"""Access denied for the user (a wrong password, or no such user): the URL is wrong."""
_GRANTS = {1044, 1142, 1227}
"""The user may not use the database or table, or do what it tried: the server's grants."""
_SETUP = {1046, 1049, 1146}
"""No database, or no such table: ``etl4all init-db`` makes them."""
_DATA = {1048, 1264, 1265, 1292, 1366, 1406, 1411, 1690}
_RETRYABLE = {1040, 1053, 1062, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055, 4031}
_UNKNOWN_DATABASE = 1049
_NO_TLS = 2026
"""PyMySQL's CR_SSL_CONNECTION_ERROR: TLS was asked for and the server offers none."""
_CANNOT_CONNECT, _GONE, _LOST = 2003, 2006, 2013


@contextlib.contextmanager
def errors(what: str, dsn: Dsn, *, connecting: bool = False) -> Iterator[None]:
    """Translate PyMySQL (and socket/file) errors raised by ``what`` on ``dsn``.

    ``connecting``: ``what`` opens the connection, so a timeout is ``connect_timeout``'s.
    """
    url = dsn.url
    try:
        yield
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if refused := tls.refused(exc):
            said = tls.describe(refused, dsn.host, dsn.port)
            raise ConfigError(f"{what} on {url} failed: {said}") from exc
        said = _timeout(exc, code, dsn, connecting) or describe(exc)
        text = f"{what} on {url} failed: {said}"
        if code == _NO_TLS:
            raise ConfigError(f"{text}; enable TLS on the server or drop the ssl options") from exc
        if code in _LOCAL_INFILE:
            raise ConfigError(f"{what} on {url}: {LOCAL_INFILE_HINT} ({said})") from exc
        if code in _LOGIN:
            raise ConfigError(f"{text}; check the user and password in the URL") from exc
        if code in _GRANTS:
            raise ConfigError(f"{text}; check the user's grants on the server") from exc
        if code in _SETUP:
            raise ConfigError(f"{text}; create them with `etl4all init-db`") from exc
        if code in _RETRYABLE:
            raise WarehouseError(f"{text}; retry later") from exc
        if code in _DATA or isinstance(exc, pymysql.err.DataError | pymysql.err.IntegrityError):
            raise DataError(f"{text}; the table refused a value") from exc
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
            raise WarehouseError(f"{text}; retry later") from exc
        raise
    except OSError as exc:
        raise WarehouseError(f"{what} on {url} failed: {exc}; retry later") from exc


def _timeout(exc: BaseException, code: int, dsn: Dsn, connecting: bool) -> str | None:
    """What timed out, when ``exc`` is PyMySQL's wrapping of a socket timeout; else None."""
    if not isinstance(exc.__context__, TimeoutError):
        return None
    host, port = dsn.host, dsn.port
    if code == _CANNOT_CONNECT:
        what = "did not accept the connection"
        return timed_out(host, port, what, dsn.connect_timeout, "connect_timeout")
    if connecting:
        what = "accepted the connection but did not complete the handshake"
        return timed_out(host, port, what, dsn.connect_timeout, "connect_timeout")
    if code == _GONE:
        what = "took no data"
        return timed_out(host, port, what, dsn.write_timeout, "write_timeout")
    return timed_out(host, port, "did not answer", dsn.read_timeout, "read_timeout")


def describe(exc: pymysql.err.MySQLError) -> str:
    """``MySQL error 1045: Access denied ...`` rather than the driver's bare args tuple."""
    if len(exc.args) == 2 and isinstance(exc.args[0], int):
        return f"MySQL error {exc.args[0]}: {urls.redact(str(exc.args[1]))}"
    return urls.redact(str(exc)) or type(exc).__name__


@dataclasses.dataclass(frozen=True)
class Dsn:
    """Where the warehouse lives and how to reach it, from a ``mysql://`` URL."""

    url: str
    """The URL, redacted: for messages."""
    database: str
    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)
    connect_timeout: float
    """Seconds for the TCP connection, then for the greeting, login and session set-up."""
    read_timeout: float
    """Seconds one read of a query may wait for the server."""
    write_timeout: float
    """Seconds one write of a query may wait for the server to take data."""
    tls: Tls | None
    """TLS (``ssl=true`` or any ``ssl_*`` option), else None: the driver's default."""

    @classmethod
    def parse(cls, url: str) -> Dsn:
        """The parts of ``url``.

        Raises:
            ConfigError: not a ``mysql://`` URL, no host, no valid database name, or a bad
                option.
        """
        parsed = urls.parse(url)
        redacted = parsed.shown
        if parsed.scheme != "mysql":
            raise ConfigError(f"{redacted} is not a mysql://user:password@host/db URL")
        urls.check(url)
        if not parsed.host:
            raise ConfigError(f"{redacted} names no host: write mysql://user:password@host/db")
        if not _DATABASE.match(parsed.database):
            raise ConfigError(f"{redacted}: name a database (letters, digits, _ and $)")
        options = {k: v for k, v in parsed.options.items() if v}
        if unknown := set(options) - _OPTIONS:
            raise ConfigError(f"{redacted}: unknown options {sorted(unknown)}; known {_OPTIONS}")
        try:
            return cls(
                url=redacted,
                database=parsed.database,
                host=parsed.host,
                port=parsed.port or 3306,
                user=parsed.user or "root",
                password=parsed.password or "",
                connect_timeout=_seconds(options, "connect_timeout", CONNECT_TIMEOUT),
                read_timeout=_seconds(options, "read_timeout", QUERY_TIMEOUT),
                write_timeout=_seconds(options, "write_timeout", QUERY_TIMEOUT),
                tls=_tls(options, redacted),
            )
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{redacted}: {exc}") from exc


def _tls(options: dict[str, str], shown: str) -> Tls | None:
    """The TLS options: on with ``ssl=true`` or any ``ssl_*`` option (:mod:`etl4all.tls`).

    Raises:
        ValueError: ``ssl`` is not true or false, or is false beside an ``ssl_*`` option.
        ConfigError: a bad TLS option.
    """
    wanted = options.get("ssl", "").lower()
    if wanted not in ("true", "false", ""):
        raise ValueError(f"ssl must be true or false, got {options['ssl']!r}")
    given = sorted(name for name in tls.OPTIONS if name in options)
    if wanted == "false" and given:
        raise ValueError(f"ssl=false and {', '.join(given)} contradict each other")
    return Tls.from_options(options, shown) if wanted == "true" or given else None


def _seconds(options: dict[str, str], name: str, default: float) -> float:
    """The option ``name`` as positive seconds.

    Raises:
        ValueError: not a positive number.
    """
    value = float(options.get(name, default))
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {options[name]!r}")
    return value


def connect(dsn: Dsn) -> pymysql.Connection:
    """A new connection: utf8mb4, UTC session, no autocommit, ``LOAD DATA LOCAL`` allowed.

    The session uses the database when it exists (``init`` creates it otherwise).

    Raises:
        ConfigError: bad credentials or grants, or ``local_infile`` off on the server.
        WarehouseError: the server cannot be reached, or does not answer in time.
    """

    def prepare(cur: pymysql.cursors.Cursor) -> None:
        cur.execute("SELECT @@GLOBAL.local_infile")
        if not (row := cur.fetchone()) or not int(row[0]):
            raise ConfigError(f"{dsn.url}: {LOCAL_INFILE_HINT}")
        cur.execute("SET time_zone = '+00:00'")
        try:
            cur.execute(f"USE `{dsn.database}`")
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != _UNKNOWN_DATABASE:
                raise

    return open_session(dsn, prepare, autocommit=False, local_infile=True)


def open_session(
    dsn: Dsn, prepare: Callable[[pymysql.cursors.Cursor], None], **options: Any
) -> pymysql.Connection:
    """A new utf8mb4 connection (PyMySQL ``options`` added), set up by ``prepare``.

    The greeting, the login and ``prepare`` are bounded by ``connect_timeout``; the
    connection returned waits ``read_timeout`` / ``write_timeout`` for each read or write.

    Raises:
        ConfigError: bad credentials or grants, what ``prepare`` refuses, a TLS file that
            cannot be loaded, a server certificate refused or a server without TLS.
        WarehouseError: the server cannot be reached, or does not answer in time.
    """
    ssl = {"ssl": dsn.tls.context(dsn.url)} if dsn.tls else {}
    with errors("connecting", dsn, connecting=True):
        conn = pymysql.connect(
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            password=dsn.password.encode(),  # UTF-8, as the server hashed it (PyMySQL: latin-1)
            connect_timeout=dsn.connect_timeout,
            read_timeout=dsn.connect_timeout,  # the greeting and the login: see the docstring
            write_timeout=dsn.connect_timeout,
            **ssl,
            charset="utf8mb4",
            **options,
        )
        try:
            with conn.cursor() as cur:
                prepare(cur)
        except BaseException:
            if conn.open:
                with contextlib.suppress(pymysql.err.MySQLError, OSError):
                    conn.close()
            raise
    # PyMySQL has no public setter; it applies these before its next read or write
    # (tests/warehouse/test_mysql_connection.py checks a query may outlast connect_timeout).
    conn._read_timeout = dsn.read_timeout
    conn._write_timeout = dsn.write_timeout
    return conn
