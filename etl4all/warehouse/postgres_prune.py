"""PostgreSQL prune in the caller's transaction: a file version drops what only older ones held.

The same steps as MySQL's (:mod:`etl4all.warehouse.mysql_prune`): :func:`prune` by version
gathers the coordinates file ``F`` loses in a temporary table, drops those memberships,
deletes the address rows no file holds any more and gives the rows that kept a holder the
smallest provenance left; by keys it only marks the memberships the kept keys lack within a
key range, and :func:`finalize` drops what is marked; :func:`revert` takes marks back and
drops what only versions after a given one added. The caller has locked the file's row
(:mod:`etl4all.warehouse.postgres_files`). File names compare byte by byte (``COLLATE "C"``).
"""

from __future__ import annotations

import polars as pl
import psycopg

from etl4all.warehouse.postgres_load import keys_table

_LOST = "_etl4all_lost"
_SAME = "{a}.latitude = {b}.latitude AND {a}.longitude = {b}.longitude"
_IN_RANGE = (
    " AND (m.latitude > %(low_lat)s::numeric"
    " OR (m.latitude = %(low_lat)s::numeric AND m.longitude >= %(low_lon)s::numeric))"
    " AND (m.latitude < %(high_lat)s::numeric"
    " OR (m.latitude = %(high_lat)s::numeric AND m.longitude < %(high_lon)s::numeric))"
)
_LOST_BY_VERSION_SQL = (
    f"INSERT INTO {_LOST} SELECT m.latitude, m.longitude FROM address_source AS m"
    " WHERE m.file_id = %(id)s AND m.version < %(version)s"
)
_MARK_DROPPED_SQL = (
    "UPDATE address_source AS m SET dropped_by = GREATEST(COALESCE(m.dropped_by, 0), %(version)s)"
    " WHERE m.file_id = %(id)s AND m.version <= %(version)s"
    + _IN_RANGE
    + " AND NOT EXISTS (SELECT 1 FROM {keys} AS k WHERE "
    + _SAME.format(a="k", b="m")
    + ")"
)
_FINALIZE_FILE_SQL = (
    "UPDATE source_file SET finalized = GREATEST(COALESCE(finalized, 0), %(version)s)"
    " WHERE id = %(id)s"
)
_LOST_FINALIZED_SQL = (
    f"INSERT INTO {_LOST} SELECT m.latitude, m.longitude FROM address_source AS m"
    " JOIN source_file AS f ON f.id = m.file_id WHERE m.file_id = %(id)s"
    " AND m.dropped_by <= f.finalized"
)
_UNMARK_SQL = (
    "UPDATE address_source SET dropped_by = NULL WHERE file_id = %(id)s AND dropped_by > %(to)s"
)
_LOST_SINCE_SQL = (
    f"INSERT INTO {_LOST} SELECT m.latitude, m.longitude FROM address_source AS m"
    " WHERE m.file_id = %(id)s AND COALESCE(m.first_version, m.version) > %(to)s"
)
_REVERT_REJECTS_SQL = (
    "DELETE FROM reject WHERE source_file = %(name)s"
    " AND COALESCE(first_version, version, 0) > %(to)s"
)
_DROP_SQL = (
    f"DELETE FROM address_source AS m USING {_LOST} AS l WHERE m.file_id = %(id)s AND "
    + _SAME.format(a="m", b="l")
)
_ORPHANS_SQL = (
    f"DELETE FROM address AS a USING {_LOST} AS l WHERE "
    + _SAME.format(a="a", b="l")
    + " AND NOT EXISTS (SELECT 1 FROM address_source AS m WHERE "
    + _SAME.format(a="m", b="a")
    + ")"
)
_REPAIR_SQL = (
    "UPDATE address AS a SET source_file = b.name, source_line = b.source_line,"
    " distance_km = b.distance_km, bearing_deg = b.bearing_deg"
    " FROM (SELECT DISTINCT ON (m.latitude, m.longitude)"
    " m.latitude, m.longitude, f.name, m.source_line, m.distance_km, m.bearing_deg"
    f" FROM address_source AS m JOIN {_LOST} AS l ON "
    + _SAME.format(a="m", b="l")
    + " JOIN source_file AS f ON f.id = m.file_id"
    " ORDER BY m.latitude, m.longitude, f.name, m.source_line) AS b"
    " WHERE " + _SAME.format(a="a", b="b") + " AND a.source_file = %(name)s"
)
_PRUNE_REJECTS_SQL = (
    "DELETE FROM reject WHERE source_file = %(name)s AND COALESCE(version, 0) < %(version)s"
)


def prune(
    cur: psycopg.Cursor,
    file_id: int,
    source: str,
    version: int,
    keep: pl.DataFrame | None,
    bounds: tuple[str, str, str, str],
) -> int:
    """Drop what version ``version`` of file ``source`` (``file_id``) lacks: memberships
    older than it (``keep`` None), or mark those of it and older whose coordinate the
    :func:`~etl4all.warehouse.table.key_frame` rows ``keep`` lack within ``bounds``
    (:func:`~etl4all.warehouse.table.key_range`). Returns the address rows deleted."""
    _lost_table(cur)
    params: dict[str, object] = {"id": file_id, "version": version}
    if keep is None:
        cur.execute(_LOST_BY_VERSION_SQL, params)
        return _drop(cur, file_id, source)
    keys = keys_table(cur, keep)
    low_lat, low_lon, high_lat, high_lon = bounds
    bound = {"low_lat": low_lat, "low_lon": low_lon, "high_lat": high_lat, "high_lon": high_lon}
    cur.execute(_MARK_DROPPED_SQL.format(keys=keys), {**params, **bound})
    cur.execute(f"DROP TABLE {keys}")
    cur.execute(_LOST_FINALIZED_SQL, params)  # a part after finalize
    return _drop(cur, file_id, source)


def finalize(cur: psycopg.Cursor, file_id: int, source: str, version: int) -> int:
    """End a prune by keys of version ``version`` of file ``source`` (``file_id``): drop what
    its parts and older ones marked, the rows nobody holds, the rejects older than it."""
    params = {"id": file_id, "version": version, "name": source}
    cur.execute(_FINALIZE_FILE_SQL, params)
    _lost_table(cur)
    cur.execute(_LOST_FINALIZED_SQL, params)
    deleted = _drop(cur, file_id, source)
    cur.execute(_PRUNE_REJECTS_SQL, params)
    return deleted


def revert(cur: psycopg.Cursor, file_id: int, source: str, to: int) -> int:
    """Drop what only the versions of file ``source`` (``file_id``) after ``to`` added: its
    memberships and rejects first loaded by them, and the rows nobody holds any more."""
    params = {"id": file_id, "to": to, "name": source}
    cur.execute(_UNMARK_SQL, params)
    _lost_table(cur)
    cur.execute(_LOST_SINCE_SQL, params)
    deleted = _drop(cur, file_id, source)
    cur.execute(_REVERT_REJECTS_SQL, params)
    return deleted


def prune_rejects(cur: psycopg.Cursor, source: str, version: int) -> int:
    """Delete the rejects of file ``source`` recorded for versions older than ``version``."""
    cur.execute(_PRUNE_REJECTS_SQL, {"name": source, "version": version})
    return cur.rowcount


def _lost_table(cur: psycopg.Cursor) -> None:
    """A new temporary table of the coordinates a file loses (dropped at commit)."""
    cur.execute(
        f"CREATE TEMPORARY TABLE {_LOST} (latitude NUMERIC(10,8) NOT NULL,"
        " longitude NUMERIC(11,8) NOT NULL, PRIMARY KEY (latitude, longitude)) ON COMMIT DROP"
    )


def _drop(cur: psycopg.Cursor, file_id: int, source: str) -> int:
    """Drop the memberships of file ``file_id`` (``source``) in the lost table, then the rows
    nobody holds (the others take the smallest provenance left); drop the lost table.
    Returns the address rows deleted."""
    params = {"id": file_id, "name": source}
    cur.execute(_DROP_SQL, params)
    cur.execute(_ORPHANS_SQL)
    deleted = cur.rowcount
    cur.execute(_REPAIR_SQL, params)
    cur.execute(f"DROP TABLE {_LOST}")
    return deleted
