"""MySQL / MariaDB connections for the warehouse: the URL, connecting, reading, error mapping.

:class:`Dsn` is the parsed ``mysql://`` URL (see :mod:`etl4all.warehouse.mysql` for its
form and options). :func:`connect` opens a PyMySQL connection with ``LOAD DATA LOCAL``
allowed and checked; :func:`read_table` reads the address table through connectorx, which
streams straight into Arrow. :func:`errors` is the one translation of PyMySQL's errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, unquote

import polars as pl
import pymysql

from etl4all import urls
from etl4all.errors import ConfigError, DataError, MissingDependencyError, WarehouseError
from etl4all.warehouse import table

LOCAL_INFILE_HINT = (
    "LOAD DATA LOCAL is disabled on the server: enable local_infile on the server "
    "(SET GLOBAL local_infile=1 / --local-infile=1)"
)
_OPTIONS = {"connect_timeout", "read_timeout", "ssl_ca"}
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


@contextlib.contextmanager
def errors(what: str, url: str) -> Iterator[None]:
    """Translate PyMySQL (and socket/file) errors raised by ``what`` on ``url``."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        said = describe(exc)
        text = f"{what} on {url} failed: {said}"
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
    read_timeout: float | None
    ssl_ca: str | None

    @classmethod
    def parse(cls, url: str) -> Dsn:
        """The parts of ``url``.

        Raises:
            ConfigError: not a ``mysql://`` URL, no host, no valid database name, or a bad
                option.
        """
        parts = urls.split(url)
        redacted = urls.redact(url)
        if parts.scheme != "mysql":
            raise ConfigError(f"{redacted} is not a mysql://user:password@host/db URL")
        urls.check(url)
        if not parts.hostname:
            raise ConfigError(f"{redacted} names no host: write mysql://user:password@host/db")
        database = parts.path.lstrip("/")
        if not _DATABASE.match(database):
            raise ConfigError(f"{redacted}: name a database (letters, digits, _ and $)")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if unknown := set(options) - _OPTIONS:
            raise ConfigError(f"{redacted}: unknown options {sorted(unknown)}; known {_OPTIONS}")
        try:
            return cls(
                url=redacted,
                database=database,
                host=parts.hostname,
                port=parts.port or 3306,
                user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""),
                connect_timeout=float(options.get("connect_timeout", 10)),
                read_timeout=float(options["read_timeout"]) if "read_timeout" in options else None,
                ssl_ca=options.get("ssl_ca"),
            )
        except ValueError as exc:
            raise ConfigError(f"{redacted}: {exc}") from exc


def connect(dsn: Dsn) -> pymysql.Connection:
    """A new connection: utf8mb4, UTC session, no autocommit, ``LOAD DATA LOCAL`` allowed.

    The session uses the database when it exists (``init`` creates it otherwise).

    Raises:
        ConfigError: bad credentials or grants, or ``local_infile`` off on the server.
        WarehouseError: the server cannot be reached.
    """
    ssl = {"ssl_ca": dsn.ssl_ca, "ssl_verify_identity": True} if dsn.ssl_ca else {}
    with errors("connecting", dsn.url):
        conn = pymysql.connect(
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            password=dsn.password.encode(),  # UTF-8, as the server hashed it (PyMySQL: latin-1)
            connect_timeout=dsn.connect_timeout,
            read_timeout=dsn.read_timeout,
            **ssl,
            charset="utf8mb4",
            autocommit=False,
            local_infile=True,
        )
        with conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.local_infile")
            if not (row := cur.fetchone()) or not int(row[0]):
                conn.close()
                raise ConfigError(f"{dsn.url}: {LOCAL_INFILE_HINT}")
            cur.execute("SET time_zone = '+00:00'")
            try:
                cur.execute(f"USE `{dsn.database}`")
            except pymysql.err.MySQLError as exc:
                if exc.args[0] != _UNKNOWN_DATABASE:
                    raise
    return conn


def read_table(dsn: Dsn) -> pl.DataFrame:
    """The address table through connectorx, in the common shape (DECIMAL arrives as Float64).

    Raises:
        ConfigError: no such database or table.
        MissingDependencyError: connectorx is not installed (``pip install 'etl4all[mysql]'``).
        WarehouseError: the database could not be read.
    """
    try:
        cx = importlib.import_module("connectorx")
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("connectorx", "mysql") from exc
    host = f"[{dsn.host}]" if ":" in dsn.host else dsn.host
    user, password = quote(dsn.user, safe=""), quote(dsn.password, safe="")
    uri = f"mysql://{user}:{password}@{host}:{dsn.port}/{dsn.database}"
    try:
        frame = cx.read_sql(uri, table.READ_SQL, return_type="polars", protocol="binary")
    except RuntimeError as exc:  # connectorx raises RuntimeError for every failure
        message = urls.redact(str(exc))
        if "doesn't exist" in message or "Unknown database" in message:
            raise ConfigError(f"{dsn.url}: {message}; run `etl4all init-db`") from None
        raise WarehouseError(f"reading {dsn.url} failed: {message}") from None
    assert isinstance(frame, pl.DataFrame)
    return table.table_frame(frame)
