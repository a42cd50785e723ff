"""DuckDB warehouse: the embedded default, a single file.

URL: ``duckdb:///relative/etl4all.duckdb`` (to the working directory) or
``duckdb:////absolute/etl4all.duckdb`` (:func:`etl4all.urls.file_path`); the parent folder
is created. No query options.
Driver: ``duckdb`` (a core dependency). The tables are created from ``sql/duckdb/`` when
the warehouse is built, so it is ready to use at once. :meth:`DuckdbWarehouse.read_url`
opens the file read-only.

A load registers the rows as an Arrow table and runs set-based SQL in one transaction:
one ``UPDATE ... FROM`` stage for known coordinates, one ``INSERT ... SELECT`` for new ones,
then the files' memberships (``address_source``, replaced by key). A prune drops a file's
memberships in set-based ``DELETE`` statements and the rows nobody holds any more
(:mod:`etl4all.stages.prune`). Opening the file and its errors: :mod:`.duckdb_connection`;
reads: :mod:`.duckdb_read`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import duckdb
import polars as pl

from etl4all.errors import ConfigError
from etl4all.warehouse import ddl, duckdb_read, file_versions, table
from etl4all.warehouse.duckdb_connection import WRITABLE_HINT, errors, opening, path_of
from etl4all.warehouse.file_versions import FileRow

_STAGE = "_etl4all_stage"
_INCOMING = "_etl4all_incoming"
_KEYS = "_etl4all_keys"
_MEMBERS = "_etl4all_members"
_LOST = "_etl4all_lost"

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
_ANSWERS_SQL = (
    f"SELECT k.key, {table.ANSWER_COLUMNS} FROM {_KEYS} AS k JOIN address AS a"
    " ON a.latitude = CAST(k.latitude AS DECIMAL(10,8))"
    " AND a.longitude = CAST(k.longitude AS DECIMAL(11,8))"
    " WHERE a.geocoder = $geocoder AND a.geocoded_at >= $since"
)
_FIND_SQL = (
    f"SELECT k.key FROM {_KEYS} AS k JOIN address AS a"
    " ON a.latitude = CAST(k.latitude AS DECIMAL(10,8))"
    " AND a.longitude = CAST(k.longitude AS DECIMAL(11,8))"
)
_SAME_KEY = "{a}.latitude = {b}.latitude AND {a}.longitude = {b}.longitude"
_FILE_SQL = "SELECT id, version, replaced, void_from, void_to FROM source_file WHERE name = $name"
_NEW_FILE_SQL = "INSERT INTO source_file (name, version) VALUES ($name, $version) RETURNING id"
_REVERT_FILE_SQL = (
    "UPDATE source_file SET version = $to, void_from = $to, void_to = $version WHERE id = $id"
)
_BUMP_SQL = (
    "UPDATE source_file SET replaced = replaced OR version > 0, version = $version"
    " WHERE id = $id AND version < $version"
)
_NEW_FILES_SQL = (
    f"INSERT INTO source_file (name) SELECT DISTINCT source_file FROM {_STAGE}"
    " WHERE source_file NOT IN (SELECT name FROM source_file)"
)
_MEMBERS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {_MEMBERS} AS
SELECT f.id AS file_id, s.latitude, s.longitude, s.source_line, s.distance_km, s.bearing_deg,
       coalesce(CAST($version AS BIGINT), f.version) AS version,
       coalesce(CAST($version AS BIGINT), f.version) AS first_version,
       CAST(NULL AS BIGINT) AS dropped_by
FROM {_STAGE} AS s JOIN source_file AS f ON f.name = s.source_file
"""
_OLD_MEMBERS_SQL = f"""
INSERT INTO {_MEMBERS}
SELECT m.* FROM address_source AS m
WHERE EXISTS (SELECT 1 FROM {_STAGE} AS s JOIN source_file AS f ON f.name = s.source_file
              WHERE f.id = m.file_id AND {_SAME_KEY.format(a="s", b="m")})
"""
_DROP_MEMBERS_SQL = f"""
DELETE FROM address_source AS m USING {_MEMBERS} AS n
WHERE m.file_id = n.file_id AND {_SAME_KEY.format(a="m", b="n")}
"""
_PUT_MEMBERS_SQL = f"""
INSERT INTO address_source (file_id, latitude, longitude, source_line, distance_km,
                            bearing_deg, version, first_version, dropped_by)
SELECT DISTINCT ON (file_id, latitude, longitude)
       file_id, latitude, longitude, source_line, distance_km, bearing_deg, version,
       min(coalesce(first_version, version)) OVER held,
       -- a newer version that holds it again takes back an older prune's mark
       CASE WHEN max(dropped_by) OVER held >= max(version) OVER held
            THEN max(dropped_by) OVER held END
FROM {_MEMBERS}
WINDOW held AS (PARTITION BY file_id, latitude, longitude)
ORDER BY file_id, latitude, longitude, version DESC, source_line
"""
_MOVED_SQL = f"""
UPDATE address AS a
SET source_line = m.source_line, distance_km = m.distance_km, bearing_deg = m.bearing_deg
FROM address_source AS m, {_STAGE} AS s
WHERE m.file_id = $id AND a.source_file = $name AND a.source_line <> m.source_line
  AND {_SAME_KEY.format(a="a", b="m")} AND {_SAME_KEY.format(a="s", b="m")}
"""
_IN_RANGE = """
      (m.latitude > CAST($low_lat AS DECIMAL(10,8))
       OR (m.latitude = CAST($low_lat AS DECIMAL(10,8))
           AND m.longitude >= CAST($low_lon AS DECIMAL(11,8))))
  AND (m.latitude < CAST($high_lat AS DECIMAL(10,8))
       OR (m.latitude = CAST($high_lat AS DECIMAL(10,8))
           AND m.longitude < CAST($high_lon AS DECIMAL(11,8))))
"""
_LOST_BY_VERSION_SQL = f"""
CREATE OR REPLACE TEMP TABLE {_LOST} AS
SELECT latitude, longitude FROM address_source AS m WHERE m.file_id = $id AND m.version < $version
"""
_MARK_DROPPED_SQL = f"""
UPDATE address_source AS m SET dropped_by = greatest(coalesce(m.dropped_by, 0), $version)
WHERE m.file_id = $id AND m.version <= $version AND {_IN_RANGE}
  AND NOT EXISTS (SELECT 1 FROM {_KEYS} AS k
                  WHERE m.latitude = CAST(k.latitude AS DECIMAL(10,8))
                  AND m.longitude = CAST(k.longitude AS DECIMAL(11,8)))
"""
_FINALIZE_FILE_SQL = (
    "UPDATE source_file SET finalized = greatest(coalesce(finalized, 0), $version) WHERE id = $id"
)
_LOST_FINALIZED_SQL = f"""
CREATE OR REPLACE TEMP TABLE {_LOST} AS
SELECT m.latitude, m.longitude FROM address_source AS m JOIN source_file AS f ON f.id = m.file_id
WHERE m.file_id = $id AND m.dropped_by <= f.finalized
"""
_UNMARK_SQL = "UPDATE address_source SET dropped_by = NULL WHERE file_id = $id AND dropped_by > $to"
_LOST_SINCE_SQL = f"""
CREATE OR REPLACE TEMP TABLE {_LOST} AS
SELECT latitude, longitude FROM address_source AS m
WHERE m.file_id = $id AND coalesce(m.first_version, m.version) > $to
"""
_REVERT_REJECTS_SQL = (
    "DELETE FROM reject WHERE source_file = $name AND coalesce(first_version, version, 0) > $to"
)
_DROP_LOST_SQL = f"""
DELETE FROM address_source AS m USING {_LOST} AS l
WHERE m.file_id = $id AND {_SAME_KEY.format(a="m", b="l")}
"""
_ORPHANS_SQL = f"""
DELETE FROM address AS a USING {_LOST} AS l
WHERE {_SAME_KEY.format(a="a", b="l")}
  AND NOT EXISTS (SELECT 1 FROM address_source AS m WHERE {_SAME_KEY.format(a="m", b="a")})
"""
_REPAIR_SQL = f"""
UPDATE address AS a
SET source_file = b.name, source_line = b.source_line,
    distance_km = b.distance_km, bearing_deg = b.bearing_deg
FROM (SELECT DISTINCT ON (m.latitude, m.longitude)
             m.latitude, m.longitude, f.name, m.source_line, m.distance_km, m.bearing_deg
      FROM address_source AS m JOIN {_LOST} AS l ON {_SAME_KEY.format(a="m", b="l")}
      JOIN source_file AS f ON f.id = m.file_id
      ORDER BY m.latitude, m.longitude, f.name, m.source_line) AS b
WHERE {_SAME_KEY.format(a="a", b="b")} AND a.source_file = $name
"""
_PRUNE_REJECTS_SQL = (
    "DELETE FROM reject WHERE source_file = $name AND coalesce(version, 0) < $version"
)
_REJECT_VERSION_SQL = f"""
UPDATE reject AS r
SET version = i.version, text = i.text, detail = i.detail, reasons = i.reasons
FROM (SELECT source, line, reason, text, detail, reasons, coalesce(CAST($version AS BIGINT),
             (SELECT f.version FROM source_file AS f WHERE f.name = source), 0) AS version
      FROM {_INCOMING}) AS i
WHERE r.source_file = i.source AND r.source_line = i.line AND r.reason = i.reason
  AND coalesce(r.version, 0) < i.version
"""
_REJECT_SQL = f"""
INSERT INTO reject
    (source_file, source_line, reason, text, detail, reasons, version, first_version)
SELECT source, line, reason, text, detail, reasons, v, v
FROM (SELECT *, coalesce(CAST($version AS BIGINT),
             (SELECT f.version FROM source_file AS f WHERE f.name = source), 0) AS v
      FROM {_INCOMING})
ON CONFLICT DO NOTHING
"""


class DuckdbWarehouse(table.SqlWarehouse):
    """The address table in a DuckDB file; a context manager.

    Args:
        url: ``duckdb:///path``.

    Raises:
        ConfigError: the URL names no file, or the file cannot be opened: not a DuckDB file,
            a folder, or a folder this user cannot write to.
        WarehouseError: the file is locked by another process, or the disk is full.
    """

    def __init__(self, *, url: str) -> None:
        self._url = url
        self.path = path_of(url)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of {url}: {exc}") from exc
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            # DuckDB could open a file there, then fail on its first write (the .wal file)
            raise ConfigError(
                f"cannot use the DuckDB warehouse {url}: this user cannot write to its folder "
                f"{self.path.parent}; {WRITABLE_HINT}"
            )
        with opening(url, self.path):
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(str(self.path))
        self.init()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise ConfigError(f"the warehouse {self._url} is closed")
        return self._con

    def init(self) -> None:
        """Create the tables from ``sql/duckdb/`` (idempotent), and fill ``address_source``
        once for rows loaded before file versions (``sql/duckdb/upgrade/``)."""
        con = self._connection()
        with errors("creating the tables", self._url):
            for statement in ddl.statements("duckdb"):
                con.execute(statement)
            counts = con.execute(
                "SELECT (SELECT count(*) FROM address), (SELECT count(*) FROM address_source)"
            ).fetchall()[0]
            if ddl.needs_upgrade(*counts):
                for statement in ddl.statements("duckdb", ddl.UPGRADE):
                    con.execute(statement)

    def missing_schema(self) -> list[str]:
        """What ``sql/duckdb/`` makes that the file lacks (none: it is made when it opens)."""
        with errors("looking for the tables", self._url):
            rows = (
                self._connection()
                .execute("SELECT table_name, column_name FROM duckdb_columns()")
                .fetchall()
            )
        return ddl.missing("duckdb", {(str(table), str(column)) for table, column in rows})

    def _merge(
        self, new: pl.DataFrame, known: pl.DataFrame, sources: list[str], version: int | None
    ) -> tuple[int, int] | None:
        """One ``UPDATE ... FROM`` and one ``INSERT ... SELECT`` of all rows (split ignored),
        then the memberships."""
        rows = pl.concat([new, known])
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con = self._connection()
        what = f"loading {rows.height} rows"
        with errors(what, self._url), self._registered(rows), self._transaction(con):
            file = None if version is None else _file_version(con, sources[0], version)
            if file is not None and file.stale:
                return None
            con.execute(_STAGE_SQL)
            updated = _count(con.execute(_UPDATE_SQL, {"now": now}))
            inserted = _count(con.execute(_INSERT_SQL, {"now": now}))
            con.execute(_NEW_FILES_SQL)
            for sql in (_MEMBERS_SQL, _OLD_MEMBERS_SQL, _DROP_MEMBERS_SQL, _PUT_MEMBERS_SQL):
                con.execute(sql, {"version": version} if "$version" in sql else None)
            if file is not None and file.replaced:
                con.execute(_MOVED_SQL, {"id": file.id, "name": sources[0]})
            con.execute(f"DROP TABLE {_STAGE}")
            con.execute(f"DROP TABLE {_MEMBERS}")
        return inserted, updated

    @contextlib.contextmanager
    def _registered(self, frame: pl.DataFrame, name: str = _INCOMING) -> Iterator[None]:
        """``frame`` readable in SQL as the view ``name`` while the block runs (outside any
        transaction: an aborted one refuses to unregister it)."""
        con = self._connection()
        con.register(name, _ArrowStream(frame))
        try:
            yield
        finally:
            con.unregister(name)

    @contextlib.contextmanager
    def _transaction(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """One transaction on ``con``: committed, or rolled back on any error."""
        con.begin()
        try:
            yield
        except BaseException:
            con.rollback()
            raise
        con.commit()

    def _answers(self, keys: pl.DataFrame, geocoder: str, since: dt.datetime) -> pl.DataFrame:
        con = self._connection()
        with errors(f"looking up {keys.height} answers", self._url), self._registered(keys, _KEYS):
            return duckdb_read.frame(
                con.sql(_ANSWERS_SQL, params={"geocoder": geocoder, "since": since})
            )

    def _find(self, keys: pl.DataFrame) -> pl.Series:
        con = self._connection()
        with errors(f"looking up {keys.height} keys", self._url), self._registered(keys, _KEYS):
            return duckdb_read.frame(con.sql(_FIND_SQL)).get_column("key")

    def _prune(
        self,
        source: str,
        version: int,
        keep: pl.DataFrame | None,
        bounds: tuple[str, str, str, str],
    ) -> int:
        """Drop the memberships of ``source`` older than ``version`` (``keep`` None), then
        the rows nobody holds; or mark those of ``version`` and older that ``keep`` lacks,
        for :meth:`finalize` to drop (at once when it came already)."""
        names = ("low_lat", "low_lon", "high_lat", "high_lon")
        con = self._connection()
        with errors(f"pruning {source}", self._url), contextlib.ExitStack() as stack:
            if keep is not None:
                stack.enter_context(self._registered(keep, _KEYS))
            stack.enter_context(self._transaction(con))
            file = _file_version(con, source, version)
            if file.void or (file.stale and keep is None):
                return 0  # by keys, it only marks what its own version and older ones hold
            params: dict[str, Any] = {"id": file.id, "version": version}
            if keep is None:
                con.execute(_LOST_BY_VERSION_SQL, params)
                return _drop_lost(con, file.id, source)
            con.execute(_MARK_DROPPED_SQL, {**params, **dict(zip(names, bounds, strict=True))})
            return _drop_lost(con, file.id, source, finalized=True)  # a part after finalize

    def revert(self, source: str, version: int, to: int) -> int:
        """Drop what only the versions of ``source`` after ``to`` added; the rows deleted."""
        con = self._connection()
        with errors(f"reverting {source}", self._url), self._transaction(con):
            file = _file_version(con, source, version, revert_to=to)
            if file.stale:
                return 0
            con.execute(_UNMARK_SQL, {"id": file.id, "to": to})
            con.execute(_LOST_SINCE_SQL, {"id": file.id, "to": to})
            deleted = _drop_lost(con, file.id, source)
            con.execute(_REVERT_REJECTS_SQL, {"name": source, "to": to})
        return deleted

    def finalize(self, source: str, version: int) -> int:
        """Delete what the prunes by keys of ``source`` up to ``version`` marked, and the
        rejects older than ``version``; the address rows deleted."""
        con = self._connection()
        with errors(f"finalizing {source}", self._url), self._transaction(con):
            file = _file_version(con, source, version)
            if file.void:
                return 0
            con.execute(_FINALIZE_FILE_SQL, {"id": file.id, "version": version})
            deleted = _drop_lost(con, file.id, source, finalized=True)
            con.execute(_PRUNE_REJECTS_SQL, {"name": source, "version": version})
        return deleted

    def prune_rejects(self, source: str, version: int) -> int:
        """Delete the rejects of ``source`` older than ``version``; the rows deleted."""
        con = self._connection()
        with errors(f"pruning the rejects of {source}", self._url), self._transaction(con):
            _file_version(con, source, version)  # older ones only: right even when stale
            return _count(con.execute(_PRUNE_REJECTS_SQL, {"name": source, "version": version}))

    def _query(self, what: str, sql: str, params: list[Any]) -> pl.DataFrame:
        with errors(what, self._url):
            return duckdb_read.frame(self._connection().sql(sql, params=params))

    def _load_rejects(self, rejects: pl.DataFrame, sources: list[str], version: int | None) -> int:
        con = self._connection()
        what = f"recording {rejects.height} rejects"
        with errors(what, self._url), self._registered(rejects), self._transaction(con):
            if version is not None and _file_version(con, sources[0], version).stale:
                return 0
            con.execute(_REJECT_VERSION_SQL, {"version": version})
            return _count(con.execute(_REJECT_SQL, {"version": version}))

    def count(self) -> int:
        """Rows in the address table."""
        with errors("counting rows", self._url):
            return _count(self._connection().execute("SELECT count(*) FROM address"))

    def last_loaded(self) -> dt.datetime | None:
        """The latest ``updated_at`` (UTC)."""
        with errors("reading the last load time", self._url):
            rows = self._connection().execute("SELECT max(updated_at) FROM address").fetchall()
        last = rows[0][0] if rows else None
        if last is None:
            return None
        return last if last.tzinfo else last.replace(tzinfo=dt.UTC)

    def read(self) -> pl.DataFrame:
        """The whole address table ordered by ``id`` (coordinates as Float64, UTC times)."""
        return duckdb_read.read_table(self._connection(), self._url)

    @classmethod
    def read_url(cls, url: str) -> pl.DataFrame:
        """The address table of the file at ``url``, opened read-only.

        Raises:
            ConfigError: a bad URL, or no address table in the file.
            WarehouseError: the file is missing or locked by a writer.
        """
        return duckdb_read.read_file(url)

    @classmethod
    def reader(cls, url: str) -> duckdb_read.DuckdbReader:
        """A read-only session on the file at ``url`` (:class:`duckdb_read.DuckdbReader`)."""
        return duckdb_read.DuckdbReader(url)

    def close(self) -> None:
        """Close the database file."""
        if self._con is not None:
            self._con.close()
            self._con = None


class _ArrowStream:
    """A Polars frame as DuckDB reads it: an Arrow C stream made anew for each scan. Unlike
    ``frame.to_arrow()`` or registering the frame, it needs no PyArrow (about 0.2 s of start-up
    with the NumPy it imports)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self._frame.__arrow_c_stream__(requested_schema)


def _drop_lost(
    con: duckdb.DuckDBPyConnection, file_id: int, source: str, *, finalized: bool = False
) -> int:
    """Drop the memberships of file ``file_id`` (``source``) listed in the lost table (or, with
    ``finalized``, those marked by a prune its finalize covers), then the rows nobody holds;
    the others take the smallest provenance left. Returns the address rows deleted."""
    if finalized:
        con.execute(_LOST_FINALIZED_SQL, {"id": file_id})
    con.execute(_DROP_LOST_SQL, {"id": file_id})
    deleted = _count(con.execute(_ORPHANS_SQL))
    con.execute(_REPAIR_SQL, {"name": source})
    con.execute(f"DROP TABLE {_LOST}")
    return deleted


def _file_version(
    con: duckdb.DuckDBPyConnection, name: str, version: int, *, revert_to: int | None = None
) -> FileRow:
    """File ``name``'s row, raised to ``version`` (created at it when missing); with
    ``revert_to``, set back to that version, the versions up to ``version`` voided
    (:func:`etl4all.warehouse.file_versions.seen`)."""
    found = con.execute(_FILE_SQL, {"name": name}).fetchall()
    if not found:
        (row,) = con.execute(_NEW_FILE_SQL, {"name": name, "version": version}).fetchall()
        return FileRow(int(row[0]), stale=False, replaced=False)
    file_id, stored, replaced, void_from, void_to = found[0]
    file = file_versions.seen(int(file_id), version, stored, replaced, void_from, void_to)
    if file.stale:
        return file
    if revert_to is not None:
        con.execute(_REVERT_FILE_SQL, {"id": file_id, "to": revert_to, "version": version})
    else:
        con.execute(_BUMP_SQL, {"id": file_id, "version": version})
    return file


def _count(relation: duckdb.DuckDBPyConnection) -> int:
    rows = relation.fetchall()  # to the end: duckdb refuses new work on unfinished results
    return int(rows[0][0]) if rows else 0
