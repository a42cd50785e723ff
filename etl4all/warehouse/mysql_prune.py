"""MySQL prune in the caller's transaction: a file version drops what only older ones held.

:func:`prune` by version gathers the coordinates file ``F`` loses (its memberships older
than the version) in a temporary table, drops those memberships, deletes the address rows no
file holds any more, and gives the rows that kept a holder the smallest provenance left; by
keys it only marks the memberships of the version and older that the kept keys lack, within
a key range, and :func:`finalize` (the version's last message) drops what is marked. So a
version cut short before its finalize deletes nothing, and :func:`revert` takes its marks
back and drops what only versions after a given one added. :func:`prune_rejects` drops the
file's rejects of older versions. The caller has locked the file's row
(:mod:`etl4all.warehouse.mysql_files`). Every value is a parameter; file names compare byte
by byte (the address table's collation would equate ``A.txt`` and ``a.txt``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pymysql.cursors

from etl4all.warehouse.mysql_load import keys_table

_SAME = "{a}.latitude = {b}.latitude AND {a}.longitude = {b}.longitude"
_IN_RANGE = (
    " AND (m.latitude > CAST(%s AS DECIMAL(10,8))"
    " OR (m.latitude = CAST(%s AS DECIMAL(10,8)) AND m.longitude >= CAST(%s AS DECIMAL(11,8))))"
    " AND (m.latitude < CAST(%s AS DECIMAL(10,8))"
    " OR (m.latitude = CAST(%s AS DECIMAL(10,8)) AND m.longitude < CAST(%s AS DECIMAL(11,8))))"
)
_LOST_BY_VERSION_SQL = (
    "INSERT INTO `{lost}` SELECT m.latitude, m.longitude FROM address_source AS m"
    " WHERE m.file_id = %s AND m.version < %s"
)
_MARK_DROPPED_SQL = (
    "UPDATE address_source AS m LEFT JOIN `{keys}` AS k ON "
    + _SAME.format(a="k", b="m")
    + " SET m.dropped_by = GREATEST(COALESCE(m.dropped_by, 0), %s)"
    " WHERE k.latitude IS NULL AND m.file_id = %s AND m.version <= %s" + _IN_RANGE
)
_FINALIZE_FILE_SQL = (
    "UPDATE source_file SET finalized = GREATEST(COALESCE(finalized, 0), %s) WHERE id = %s"
)
_LOST_FINALIZED_SQL = (
    "INSERT INTO `{lost}` SELECT m.latitude, m.longitude FROM address_source AS m"
    " JOIN source_file AS f ON f.id = m.file_id WHERE m.file_id = %s"
    " AND m.dropped_by <= f.finalized"
)
_UNMARK_SQL = "UPDATE address_source SET dropped_by = NULL WHERE file_id = %s AND dropped_by > %s"
_LOST_SINCE_SQL = (
    "INSERT INTO `{lost}` SELECT m.latitude, m.longitude FROM address_source AS m"
    " WHERE m.file_id = %s AND COALESCE(m.first_version, m.version) > %s"
)
_REVERT_REJECTS_SQL = (
    "DELETE FROM reject WHERE source_file = %s"
    " AND CAST(source_file AS BINARY) = CAST(%s AS BINARY)"
    " AND COALESCE(first_version, version, 0) > %s"
)
_DROP_SQL = (
    "DELETE m FROM address_source AS m JOIN `{lost}` AS l ON "
    + _SAME.format(a="m", b="l")
    + " WHERE m.file_id = %s"
)
_ORPHANS_SQL = (
    "DELETE a FROM address AS a JOIN `{lost}` AS l ON "
    + _SAME.format(a="a", b="l")
    + " LEFT JOIN address_source AS m ON "
    + _SAME.format(a="m", b="a")
    + " WHERE m.file_id IS NULL"
)
_REPAIR_SQL = (
    "UPDATE address AS a JOIN `{lost}` AS l ON "
    + _SAME.format(a="a", b="l")
    + " JOIN address_source AS m ON "
    + _SAME.format(a="m", b="a")
    + " JOIN source_file AS f ON f.id = m.file_id"
    " SET a.source_file = f.name, a.source_line = m.source_line,"
    " a.distance_km = m.distance_km, a.bearing_deg = m.bearing_deg"
    " WHERE CAST(a.source_file AS BINARY) = CAST(%s AS BINARY)"
    " AND NOT EXISTS (SELECT 1 FROM address_source AS m2 JOIN source_file AS f2"
    " ON f2.id = m2.file_id WHERE "
    + _SAME.format(a="m2", b="m")
    + " AND (f2.name < f.name OR (f2.id = f.id AND m2.source_line < m.source_line)))"
)
_PRUNE_REJECTS_SQL = (
    "DELETE FROM reject WHERE source_file = %s"
    " AND CAST(source_file AS BINARY) = CAST(%s AS BINARY) AND COALESCE(version, 0) < %s"
)


def prune(
    cur: pymysql.cursors.Cursor,
    file_id: int,
    source: str,
    version: int,
    keep: pl.DataFrame | None,
    bounds: tuple[str, str, str, str],
    *,
    url: str,
    spool_root: Path | None = None,
) -> int:
    """Drop what version ``version`` of file ``source`` (``file_id``) lacks: memberships
    older than it (``keep`` None), or of it and older whose coordinate the
    :func:`~etl4all.warehouse.table.key_frame` rows ``keep`` lack within ``bounds``
    (:func:`~etl4all.warehouse.table.key_range`). Returns the address rows deleted."""
    lost = _lost_table(cur)
    if keep is None:
        cur.execute(_LOST_BY_VERSION_SQL.format(lost=lost), (file_id, version))
        return _drop(cur, lost, file_id, source)
    keys = keys_table(cur, keep, url=url, spool_root=spool_root)
    low_lat, low_lon, high_lat, high_lon = bounds
    cur.execute(
        _MARK_DROPPED_SQL.format(keys=keys),
        (version, file_id, version, low_lat, low_lat, low_lon, high_lat, high_lat, high_lon),
    )
    cur.execute(f"DROP TEMPORARY TABLE `{keys}`")
    cur.execute(_LOST_FINALIZED_SQL.format(lost=lost), (file_id,))  # a part after finalize
    return _drop(cur, lost, file_id, source)


def finalize(cur: pymysql.cursors.Cursor, file_id: int, source: str, version: int) -> int:
    """End a prune by keys of version ``version`` of file ``source`` (``file_id``): drop what
    its parts and older ones marked, the rows nobody holds, the rejects older than it."""
    cur.execute(_FINALIZE_FILE_SQL, (version, file_id))
    lost = _lost_table(cur)
    cur.execute(_LOST_FINALIZED_SQL.format(lost=lost), (file_id,))
    deleted = _drop(cur, lost, file_id, source)
    prune_rejects(cur, source, version)
    return deleted


def _lost_table(cur: pymysql.cursors.Cursor) -> str:
    """A new temporary table of the coordinates a file loses; its name."""
    lost = f"_etl4all_lost_{uuid.uuid4().hex[:16]}"
    cur.execute(
        f"CREATE TEMPORARY TABLE `{lost}` (latitude DECIMAL(10,8) NOT NULL,"
        " longitude DECIMAL(11,8) NOT NULL, PRIMARY KEY (latitude, longitude))"
    )
    return lost


def _drop(cur: pymysql.cursors.Cursor, lost: str, file_id: int, source: str) -> int:
    """Drop the memberships of file ``file_id`` (``source``) in the table ``lost``, then
    the rows nobody holds (the others take the smallest provenance left); drop ``lost``.
    Returns the address rows deleted."""
    cur.execute(_DROP_SQL.format(lost=lost), (file_id,))
    cur.execute(_ORPHANS_SQL.format(lost=lost))
    deleted = int(cur.rowcount)
    cur.execute(_REPAIR_SQL.format(lost=lost), (source,))
    cur.execute(f"DROP TEMPORARY TABLE `{lost}`")
    return deleted


def revert(cur: pymysql.cursors.Cursor, file_id: int, source: str, to: int) -> int:
    """Drop what only the versions of file ``source`` (``file_id``) after ``to`` added: its
    memberships and rejects first loaded by them, and the rows nobody holds any more."""
    cur.execute(_UNMARK_SQL, (file_id, to))
    lost = _lost_table(cur)
    cur.execute(_LOST_SINCE_SQL.format(lost=lost), (file_id, to))
    deleted = _drop(cur, lost, file_id, source)
    cur.execute(_REVERT_REJECTS_SQL, (source, source, to))
    return deleted


def prune_rejects(cur: pymysql.cursors.Cursor, source: str, version: int) -> int:
    """Delete the rejects of file ``source`` recorded for versions older than ``version``."""
    cur.execute(_PRUNE_REJECTS_SQL, (source, source, version))
    return int(cur.rowcount)
