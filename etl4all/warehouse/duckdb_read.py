"""DuckDB: reading the address table and the report's queries, through the Arrow C stream
(no PyArrow)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from etl4all import urls
from etl4all.errors import ConfigError, WarehouseError
from etl4all.warehouse import table
from etl4all.warehouse.duckdb_connection import errors, opening, path_of


class DuckdbReader:
    """A read-only UTC connection on the DuckDB file at ``url``.

    Raises:
        ConfigError: a bad URL, or no such file.
        WarehouseError: the file cannot be opened (locked by a writer).
    """

    def __init__(self, url: str) -> None:
        self._url = urls.redact(url)
        path = path_of(url)
        if not path.is_file():
            raise ConfigError(f"{self._url}: no such DuckDB file ({path}); run `etl4all run`")
        try:
            self._con = duckdb.connect(str(path), read_only=True)
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise WarehouseError(f"opening {self._url} failed: {exc}; retry later") from exc

    def run(self, sql: str, params: Sequence[int | float | str]) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?`` marks."""
        try:
            return frame(self._con.sql(sql, params=list(params)))
        except duckdb.CatalogException as exc:
            raise ConfigError(f"{self._url}: {exc}; run `etl4all init-db` first") from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"querying {self._url} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        self._con.close()


def read_table(con: duckdb.DuckDBPyConnection, url: str) -> pl.DataFrame:
    """The address table through ``con``, in the common shape."""
    with errors("reading the table", url):
        return table.table_frame(frame(con.sql(table.READ_SQL)))


def frame(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """The rows of ``relation`` as a Polars frame, through the Arrow C stream (no PyArrow)."""
    return pl.DataFrame(relation)


def read_file(url: str) -> pl.DataFrame:
    """The address table of the file at ``url``, opened read-only.

    Raises:
        ConfigError: a bad URL, or no address table in the file.
        WarehouseError: the file is missing or locked by a writer.
    """
    path = path_of(url)
    if not path.exists():
        raise WarehouseError(f"opening {url} failed: no such file {path}")
    with opening(url, path), duckdb.connect(str(path), read_only=True) as con:
        return read_table(con, url)
