"""DuckDB warehouse: the embedded default, a single file.

URL: ``duckdb:///path/to/etl4all.duckdb`` (see :func:`etl4all.urls.file_path` for relative
and absolute paths); the parent folder is created. No query options.
Driver: ``duckdb`` (a core dependency). The tables are created from ``sql/duckdb/`` when
the warehouse is built, so it is ready to use at once. :meth:`DuckdbWarehouse.read_url`
opens the file read-only.

A load registers the rows as an Arrow table and runs set-based SQL in one transaction:
one ``UPDATE ... FROM`` stage for known coordinates, one ``INSERT ... SELECT`` for new ones.
A prune is one ``DELETE`` anti-joined with the registered keys a file still holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl4all import frames, urls
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.warehouse import ddl, table

_STAGE = "_etl4all_stage"
_INCOMING = "_etl4all_incoming"
_KEYS = "_etl4all_keys"

_DATA_ERRORS = (
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.ConstraintException,
    duckdb.TypeMismatchException,
    duckdb.InvalidInputException,
)
_RETRYABLE_ERRORS = (
    duckdb.TransactionException,
    duckdb.IOException,
    duckdb.ConnectionException,
    duckdb.OutOfMemoryException,
    duckdb.InterruptException,
)


@contextlib.contextmanager
def _errors(what: str, url: str) -> Iterator[None]:
    """Translate duckdb errors raised by ``what`` on ``url`` into etl4all errors."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise DataError(f"{what} on {url}: the table refused a value: {exc}") from exc
    except duckdb.CatalogException as exc:
        raise ConfigError(f"{what} on {url}: {exc}; run `etl4all init-db` first") from exc
    except _RETRYABLE_ERRORS as exc:
        raise WarehouseError(f"{what} on {url} failed: {exc}; retry later") from exc


_CHANGED = table.changed_sql("{s} IS DISTINCT FROM {a}")
_SMALLER = table.smaller_sql()
_CASTS = {"latitude": "DECIMAL(10,8)", "longitude": "DECIMAL(11,8)", "source_line": "UINTEGER"}
_STAGE_SQL = (
    f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS SELECT "
    + ", ".join(f"CAST({c} AS {_CASTS[c]}) AS {c}" if c in _CASTS else c for c in table.COLUMNS)
    + f" FROM {_INCOMING}"
)
_UPDATE_SQL = (
    "UPDATE address AS a SET "
    + table.merge_sql(stored="a", changed=_CHANGED, smaller=_SMALLER)
    + f", updated_at = $now FROM {_STAGE} AS s"
    " WHERE a.latitude = s.latitude AND a.longitude = s.longitude"
    f" AND ({_CHANGED} OR {_SMALLER})"
)
_INSERT_SQL = (
    f"INSERT INTO address ({', '.join(table.COLUMNS)}, created_at, updated_at)"
    f" SELECT {', '.join('s.' + c for c in table.COLUMNS)}, $now, $now FROM {_STAGE} AS s"
    " WHERE NOT EXISTS (SELECT 1 FROM address AS a"
    " WHERE a.latitude = s.latitude AND a.longitude = s.longitude)"
)
_FIND_SQL = (
    f"SELECT k.key FROM {_KEYS} AS k JOIN address AS a"
    " ON a.latitude = CAST(k.latitude AS DECIMAL(10,8))"
    " AND a.longitude = CAST(k.longitude AS DECIMAL(11,8))"
)
_PRUNE_SQL = f"""
DELETE FROM address AS a
WHERE a.source_file = $source
  AND (a.latitude > CAST($low_lat AS DECIMAL(10,8))
       OR (a.latitude = CAST($low_lat AS DECIMAL(10,8))
           AND a.longitude >= CAST($low_lon AS DECIMAL(11,8))))
  AND (a.latitude < CAST($high_lat AS DECIMAL(10,8))
       OR (a.latitude = CAST($high_lat AS DECIMAL(10,8))
           AND a.longitude < CAST($high_lon AS DECIMAL(11,8))))
  AND NOT EXISTS (SELECT 1 FROM {_KEYS} AS k
                  WHERE a.latitude = CAST(k.latitude AS DECIMAL(10,8))
                  AND a.longitude = CAST(k.longitude AS DECIMAL(11,8)))
"""
_PRUNE_REJECTS_SQL = f"""
DELETE FROM reject AS r
WHERE r.source_file = $source AND list_contains($reasons, r.reason)
  AND NOT EXISTS (SELECT 1 FROM {_INCOMING} AS k
                  WHERE k.line = r.source_line AND k.reason = r.reason)
"""
_REJECT_SQL = f"""
INSERT INTO reject (source_file, source_line, reason, text, detail)
SELECT source, line, reason, text, detail FROM {_INCOMING}
ON CONFLICT DO NOTHING
"""


def _path(url: str) -> Path:
    """The file of a ``duckdb:///path`` URL.

    Raises:
        ConfigError: not a duckdb URL, or no file in it.
    """
    if urls.scheme_of(url) != "duckdb":
        raise ConfigError(f"{urls.redact(url)} is not a duckdb:///path URL")
    return Path(urls.file_path(url))


class DuckdbWarehouse(table.SqlWarehouse):
    """The address table in a DuckDB file; a context manager.

    Args:
        url: ``duckdb:///path``.

    Raises:
        ConfigError: the URL names no file, or the file cannot be opened.
        WarehouseError: the file is locked by another process.
    """

    def __init__(self, *, url: str) -> None:
        self._url = url
        self.path = _path(url)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of {url}: {exc}") from exc
        with _errors("opening", url):
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(str(self.path))
        self.init()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise ConfigError(f"the warehouse {self._url} is closed")
        return self._con

    def init(self) -> None:
        """Create the sequence and the address table from ``sql/duckdb/`` (idempotent)."""
        con = self._connection()
        with _errors("creating the tables", self._url):
            for statement in ddl.statements("duckdb"):
                con.execute(statement)

    def missing_schema(self) -> list[str]:
        """What ``sql/duckdb/`` makes that the file lacks (none: it is made when it opens)."""
        with _errors("looking for the tables", self._url):
            rows = (
                self._connection()
                .execute("SELECT table_name, column_name FROM duckdb_columns()")
                .fetchall()
            )
        return ddl.missing("duckdb", {(str(table), str(column)) for table, column in rows})

    def _merge(self, new: pl.DataFrame, known: pl.DataFrame) -> tuple[int, int]:
        """One ``UPDATE ... FROM`` and one ``INSERT ... SELECT`` of all rows (split ignored)."""
        rows = pl.concat([new, known])
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con = self._connection()
        with _errors(f"loading {rows.height} rows", self._url):
            con.begin()
            try:
                con.register(_INCOMING, rows.to_arrow())
                con.execute(_STAGE_SQL)
                updated = _count(con.execute(_UPDATE_SQL, {"now": now}))
                inserted = _count(con.execute(_INSERT_SQL, {"now": now}))
                con.execute(f"DROP TABLE {_STAGE}")
                con.commit()
            except BaseException:
                con.rollback()
                raise
            finally:
                con.unregister(_INCOMING)
        return inserted, updated

    def _find(self, keys: pl.DataFrame) -> pl.Series:
        con = self._connection()
        with _errors(f"looking up {keys.height} keys", self._url):
            con.register(_KEYS, keys.to_arrow())
            try:
                return con.sql(_FIND_SQL).pl().get_column("key")
            finally:
                con.unregister(_KEYS)

    def _prune(self, source: str, keep: pl.DataFrame, bounds: tuple[str, str, str, str]) -> int:
        """One ``DELETE`` anti-joined with ``keep``, registered as an Arrow table."""
        names = ("low_lat", "low_lon", "high_lat", "high_lon")
        con = self._connection()
        with _errors(f"pruning {source}", self._url):
            con.register(_KEYS, keep.to_arrow())
            try:
                params = {"source": source, **dict(zip(names, bounds, strict=True))}
                return _count(con.execute(_PRUNE_SQL, params))
            finally:
                con.unregister(_KEYS)

    def prune_rejects(self, source: str, keep: pl.DataFrame, reasons: Sequence[str]) -> int:
        """Delete the ``reasons`` rejects of ``source`` that ``keep`` lacks; the rows deleted."""
        con = self._connection()
        with _errors(f"pruning the rejects of {source}", self._url):
            con.register(_INCOMING, keep.select("line", "reason").to_arrow())
            try:
                params = {"source": source, "reasons": list(reasons)}
                return _count(con.execute(_PRUNE_REJECTS_SQL, params))
            finally:
                con.unregister(_INCOMING)

    def _query(self, what: str, sql: str, params: list[Any]) -> pl.DataFrame:
        with _errors(what, self._url):
            return self._connection().sql(sql, params=params).pl()

    def load_rejects(self, rejects: pl.DataFrame) -> int:
        """Record rejects in the ``reject`` table; the number of rows added."""
        if rejects.is_empty():
            return 0
        rejects = frames.cast_frame(rejects, frames.REJECTS_SCHEMA)  # fills a missing detail
        con = self._connection()
        with _errors(f"recording {rejects.height} rejects", self._url):
            con.register(_INCOMING, rejects.to_arrow())
            try:
                return _count(con.execute(_REJECT_SQL))
            finally:
                con.unregister(_INCOMING)

    def count(self) -> int:
        """Rows in the address table."""
        with _errors("counting rows", self._url):
            return _count(self._connection().execute("SELECT count(*) FROM address"))

    def last_loaded(self) -> dt.datetime | None:
        """The latest ``updated_at`` (UTC)."""
        with _errors("reading the last load time", self._url):
            rows = self._connection().execute("SELECT max(updated_at) FROM address").fetchall()
        last = rows[0][0] if rows else None
        if last is None:
            return None
        return last if last.tzinfo else last.replace(tzinfo=dt.UTC)

    def read(self) -> pl.DataFrame:
        """The whole address table ordered by ``id`` (coordinates as Float64, UTC times)."""
        return _read(self._connection(), self._url)

    @classmethod
    def read_url(cls, url: str) -> pl.DataFrame:
        """The address table of the file at ``url``, opened read-only.

        Raises:
            ConfigError: a bad URL, or no address table in the file.
            WarehouseError: the file is missing or locked by a writer.
        """
        path = _path(url)
        with _errors("opening", url), duckdb.connect(str(path), read_only=True) as con:
            return _read(con, url)

    def close(self) -> None:
        """Close the database file."""
        if self._con is not None:
            self._con.close()
            self._con = None


def _read(con: duckdb.DuckDBPyConnection, url: str) -> pl.DataFrame:
    """The address table through ``con``, in the common shape."""
    with _errors("reading the table", url):
        return table.table_frame(con.sql(table.READ_SQL).pl())


def _count(relation: duckdb.DuckDBPyConnection) -> int:
    rows = relation.fetchall()  # to the end: duckdb refuses new work on unfinished results
    return int(rows[0][0]) if rows else 0
