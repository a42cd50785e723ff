"""A read-only MySQL/MariaDB session for the analysis queries (driver: PyMySQL).

The query text goes to the server unchanged as a prepared statement: ``PREPARE … FROM``
the text, the values into session variables, ``EXECUTE … USING`` them. Unlike the
warehouse's loader connection it needs no ``local_infile``; the URL and the error mapping
are the warehouse's (:mod:`etl4all.warehouse.mysql_connection`).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pymysql
from pymysql.constants import FIELD_TYPE

from etl4all.warehouse.mysql_connection import Dsn, errors, open_session

_STATEMENT = "etl4all_analysis"
_INTEGERS = {FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.INT24, FIELD_TYPE.LONG}
_INTEGERS |= {FIELD_TYPE.LONGLONG, FIELD_TYPE.YEAR}
_DECIMALS = {FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL}
_FLOATS = {FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE}
_TIMES = {FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP, FIELD_TYPE.DATE}


def _dtype(type_code: int, scale: int) -> pl.DataType:
    """The column type of a result column, from the server's description of it (so an
    empty or all-NULL column has its type too)."""
    if type_code in _INTEGERS or (type_code in _DECIMALS and not scale):
        return pl.Int64()
    if type_code in _DECIMALS | _FLOATS:
        return pl.Float64()
    if type_code in _TIMES:
        return pl.Datetime("us")
    return pl.String()


class MySqlSession:
    """A UTC session on the database of ``url``, with autocommit (it only reads).

    Raises:
        ConfigError: a bad URL, refused credentials or an unknown database.
        WarehouseError: the server cannot be reached.
    """

    def __init__(self, url: str) -> None:
        self._dsn = Dsn.parse(url)

        def prepare(cur: pymysql.cursors.Cursor) -> None:
            cur.execute("SET time_zone = '+00:00'")

        self._conn = open_session(self._dsn, prepare, database=self._dsn.database, autocommit=True)

    def run(self, sql: str, params: Sequence[int | float | str]) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?`` marks, as a frame."""
        variables = [f"@etl4all_p{i}" for i in range(len(params))]
        with errors("running an analysis query", self._dsn), self._conn.cursor() as cur:
            for variable, value in zip(variables, params, strict=True):
                cur.execute(f"SET {variable} = %s", (value,))
            cur.execute(f"PREPARE {_STATEMENT} FROM %s", (sql,))
            using = f" USING {', '.join(variables)}" if variables else ""
            cur.execute(f"EXECUTE {_STATEMENT}{using}")
            schema = {d[0]: _dtype(d[1], d[5]) for d in cur.description or ()}
            rows = cur.fetchall()
            cur.execute(f"DEALLOCATE PREPARE {_STATEMENT}")
        return pl.DataFrame(rows, schema=schema, orient="row", strict=False)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
