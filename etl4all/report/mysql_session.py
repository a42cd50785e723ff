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

from etl4all.warehouse.mysql_connection import Dsn, errors

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
        ssl = {"ssl_ca": self._dsn.ssl_ca, "ssl_verify_identity": True} if self._dsn.ssl_ca else {}
        with errors("connecting", self._dsn.url):
            self._conn = pymysql.connect(
                host=self._dsn.host,
                port=self._dsn.port,
                user=self._dsn.user,
                password=self._dsn.password.encode(),
                database=self._dsn.database,
                connect_timeout=self._dsn.connect_timeout,
                read_timeout=self._dsn.read_timeout,
                **ssl,
                charset="utf8mb4",
                autocommit=True,
            )
            with self._conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")

    def run(self, sql: str, params: Sequence[int | float | str]) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?`` marks, as a frame."""
        variables = [f"@etl4all_p{i}" for i in range(len(params))]
        with errors("running an analysis query", self._dsn.url), self._conn.cursor() as cur:
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
