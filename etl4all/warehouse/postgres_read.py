"""The PostgreSQL warehouse's reads: a query with ``?`` marks into a typed Polars frame, and the
whole address table.

A query's ``?`` marks become ``$1, $2…`` (:func:`numbered`, which leaves string literals,
quoted names and comments alone) and go to the server with their values through psycopg's
``RawCursor``: no value is pasted into the text, so the files of ``sql/analysis/`` run
unchanged. Column types come from the server's description of the result, so an empty column
has its type too; a ``NUMERIC`` without a declared scale (a sum, a minimum) takes the scale of
its values (whole numbers as Int64). The whole table goes through connectorx, which streams
straight into Arrow, except over verified TLS: connectorx's ``sslmode`` knows only
``disable``, ``prefer`` and ``require`` and it takes no certificate file, so such a warehouse is
read through psycopg, verified as its other connections are. :class:`PostgresReader` is the
read-only session the report opens.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from decimal import Decimal
from urllib.parse import quote, urlencode

import polars as pl
import psycopg

from etl4all import urls
from etl4all.errors import ConfigError, MissingDependencyError, WarehouseError
from etl4all.warehouse import table
from etl4all.warehouse.postgres_connection import Dsn, connect, errors

Param = int | float | str
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\?", re.S)
_INTEGERS = {"int2", "int4", "int8", "oid"}
_FLOATS = {"float4", "float8"}
_TIMES = {"timestamp", "timestamptz", "date"}
GEOMETRY = "geom"
"""The PostGIS column of ``address`` (when the extension is there), left out of its reads."""
_CONNECTORX_MODES = {"disable", "prefer", "require"}
"""The ``sslmode`` values connectorx takes (libpq's default ``prefer`` among them)."""
_CERTIFICATE_FILES = {"sslrootcert", "sslcert", "sslkey"}
READ_SQL = f"SELECT id, {', '.join(table.COLUMNS)}, created_at, updated_at FROM address ORDER BY id"
"""The whole-table read, in the common column order, without the geometry."""


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` marks as PostgreSQL's ``$1, $2…``, in order; marks inside
    string literals, quoted names and comments stay as they are."""
    count = 0

    def mark(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _TOKENS.sub(mark, sql)


def _dtype(type_name: str, scale: int | None, values: list[object]) -> pl.DataType:
    """The column type of a result column, from the server's description of it."""
    if type_name in _INTEGERS:
        return pl.Int64()
    if type_name in _FLOATS:
        return pl.Float64()
    if type_name in _TIMES:
        return pl.Datetime("us")
    if type_name == "bool":
        return pl.Boolean()
    if type_name == "numeric":
        if scale is None:  # undeclared: the scale the values carry
            exponents = [v.as_tuple().exponent for v in values if isinstance(v, Decimal)]
            scale = -min((e for e in exponents if isinstance(e, int)), default=0)
        return pl.Int64() if scale <= 0 else pl.Float64()
    return pl.String()


def query(cur: psycopg.Cursor, sql: str, params: Sequence[object]) -> pl.DataFrame:
    """The rows of ``sql`` with ``params`` bound to its ``?`` marks, as a typed frame."""
    raw = psycopg.RawCursor(cur.connection)
    with raw:
        raw.execute(numbered(sql), list(params))
        rows = raw.fetchall()
        described = raw.description or []
    schema = {
        d.name: _dtype(_type_name(cur.connection, d.type_code), d.scale, [r[i] for r in rows])
        for i, d in enumerate(described)
    }
    return pl.DataFrame(rows, schema=schema, orient="row", strict=False)


def _type_name(conn: psycopg.Connection, oid: int) -> str:
    """The name of the type ``oid`` (``int8``, ``numeric``…); ``""`` for one psycopg does not
    know (an extension's, such as PostGIS's geometry)."""
    info = conn.adapters.types.get(oid)
    return info.name if info is not None else ""


class PostgresReader:
    """A read-only UTC session on the database of ``url``, with autocommit.

    Raises:
        ConfigError: a bad URL, refused credentials or an unknown database.
        WarehouseError: the server cannot be reached.
    """

    def __init__(self, url: str) -> None:
        self._dsn = Dsn.parse(url)
        self._conn = connect(self._dsn, autocommit=True, read_only=True)

    def run(self, sql: str, params: Sequence[Param]) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?`` marks (:func:`query`)."""
        with errors("running a query", self._dsn), self._conn.cursor() as cur:
            return query(cur, sql, params)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _connectorx_reads(dsn: Dsn) -> bool:
    """Whether connectorx connects to ``dsn`` as libpq would: no certificate file, a mode it
    knows."""
    options = dict(dsn.options)
    mode = options.get("sslmode", "prefer")
    return mode in _CONNECTORX_MODES and not _CERTIFICATE_FILES & options.keys()


def read_table(dsn: Dsn) -> pl.DataFrame:
    """The address table through connectorx (psycopg over TLS connectorx cannot verify), in
    the common shape (NUMERIC as Float64).

    Raises:
        ConfigError: no such database or table.
        MissingDependencyError: connectorx is not installed (``pip install 'etl4all[postgres]'``).
        WarehouseError: the database could not be read.
    """
    if not _connectorx_reads(dsn):
        with (
            errors("reading the address table", dsn),
            connect(dsn, autocommit=True, read_only=True) as conn,
            conn.cursor() as cur,
        ):
            frame = query(cur, READ_SQL, ())
        # the one INTEGER column, typed as connectorx types it
        return table.table_frame(frame.cast({"source_line": pl.Int32}))
    try:
        cx = importlib.import_module("connectorx")
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("connectorx", "postgres") from exc
    host = f"[{dsn.host}]" if ":" in dsn.host else dsn.host
    login = quote(dsn.user, safe="")
    if dsn.password is not None:
        login += ":" + quote(dsn.password, safe="")
    options = [(k, v) for k, v in dsn.options if k != "connect_timeout"]
    query_part = f"?{urlencode(options)}" if options else ""
    uri = f"postgresql://{login}@{host}:{dsn.port}/{dsn.database}{query_part}"
    try:
        frame = cx.read_sql(uri, READ_SQL, return_type="polars", protocol="binary")
    except RuntimeError as exc:  # connectorx raises RuntimeError for every failure
        message = urls.redact(str(exc))
        if "does not exist" in message:
            raise ConfigError(f"{dsn.url}: {message}; run `etl4all init-db`") from None
        raise WarehouseError(f"reading {dsn.url} failed: {message}") from None
    assert isinstance(frame, pl.DataFrame)
    return table.table_frame(frame)
