"""The MySQL warehouse's reads: a query with ``?`` marks into a typed Polars frame, and the
whole address table.

A query's text goes to the server unchanged as a prepared statement (``PREPARE … FROM``, the
values into session variables, ``EXECUTE … USING`` them), so the same SQL runs on DuckDB and
no value is pasted into it; the column types come from the server's description of the
result, so an empty or all-NULL column has its type too. The whole table, unparameterized,
goes through connectorx instead, which streams straight into Arrow (10x PyMySQL on 200 000
rows), except over TLS: connectorx's MySQL URL can name no CA file, so a TLS warehouse is read
through PyMySQL, verified as its other connections are. :class:`MySqlReader` is the read-only
session the report opens.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from urllib.parse import quote

import polars as pl
import pymysql
import pymysql.cursors
from pymysql.constants import FIELD_TYPE

from etl4all import urls
from etl4all.errors import ConfigError, MissingDependencyError, WarehouseError
from etl4all.warehouse import table
from etl4all.warehouse.mysql_connection import Dsn, errors, open_session

Param = int | float | str
_STATEMENT = "etl4all_read"
_INTEGERS = {FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.INT24, FIELD_TYPE.LONG}
_INTEGERS |= {FIELD_TYPE.LONGLONG, FIELD_TYPE.YEAR}
_DECIMALS = {FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL}
_FLOATS = {FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE}
_TIMES = {FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP, FIELD_TYPE.DATE}


def _dtype(type_code: int, scale: int) -> pl.DataType:
    """The column type of a result column, from the server's description of it."""
    if type_code in _INTEGERS or (type_code in _DECIMALS and not scale):
        return pl.Int64()
    if type_code in _DECIMALS | _FLOATS:
        return pl.Float64()
    if type_code in _TIMES:
        return pl.Datetime("us")
    return pl.String()


def query(cur: pymysql.cursors.Cursor, sql: str, params: Sequence[Param]) -> pl.DataFrame:
    """The rows of ``sql`` with ``params`` bound to its ``?`` marks, as a typed frame."""
    variables = [f"@etl4all_p{i}" for i in range(len(params))]
    for variable, value in zip(variables, params, strict=True):
        cur.execute(f"SET {variable} = %s", (value,))
    cur.execute(f"PREPARE {_STATEMENT} FROM %s", (sql,))
    using = f" USING {', '.join(variables)}" if variables else ""
    cur.execute(f"EXECUTE {_STATEMENT}{using}")
    schema = {d[0]: _dtype(d[1], d[5]) for d in cur.description or ()}
    rows = cur.fetchall()
    cur.execute(f"DEALLOCATE PREPARE {_STATEMENT}")
    return pl.DataFrame(rows, schema=schema, orient="row", strict=False)


class MySqlReader:
    """A read-only UTC session on the database of ``url``, with autocommit.

    Unlike the warehouse's loader connection it needs no ``local_infile``.

    Raises:
        ConfigError: a bad URL, refused credentials or an unknown database.
        WarehouseError: the server cannot be reached.
    """

    def __init__(self, url: str) -> None:
        self._dsn = Dsn.parse(url)
        self._conn = _session(self._dsn)

    def run(self, sql: str, params: Sequence[Param]) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?`` marks (:func:`query`)."""
        with errors("running a query", self._dsn), self._conn.cursor() as cur:
            return query(cur, sql, params)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _session(dsn: Dsn) -> pymysql.Connection:
    """A read-only UTC session with autocommit on the database of ``dsn``."""

    def prepare(cur: pymysql.cursors.Cursor) -> None:
        cur.execute("SET time_zone = '+00:00'")

    return open_session(dsn, prepare, database=dsn.database, autocommit=True)


def read_table(dsn: Dsn) -> pl.DataFrame:
    """The address table through connectorx (PyMySQL over TLS), in the common shape (DECIMAL
    arrives as Float64).

    Raises:
        ConfigError: no such database or table.
        MissingDependencyError: connectorx is not installed (``pip install 'etl4all[mysql]'``).
        WarehouseError: the database could not be read.
    """
    if dsn.tls is not None:
        conn = _session(dsn)
        try:
            with errors("reading the address table", dsn), conn.cursor() as cur:
                frame = query(cur, table.READ_SQL, ())
        finally:
            conn.close()
        # the table's one INT UNSIGNED column, typed as connectorx types it
        return table.table_frame(frame.cast({"source_line": pl.UInt32}))
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
