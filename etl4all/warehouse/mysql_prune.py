"""MySQL prune in the caller's transaction: delete what a changed file no longer holds.

:func:`prune` loads the keys the file still holds into a temporary table
(:func:`~etl4all.warehouse.mysql_load.keys_table`) and runs one ``DELETE`` anti-joined with
it; :func:`prune_rejects` does the same for the file's rejects. Every value is a parameter;
file names compare byte by byte (the table's collation would equate ``A.txt`` and ``a.txt``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import polars as pl
import pymysql.cursors

from etl4all.warehouse.mysql_load import keys_table

_SAME_FILE = "CAST({}.source_file AS BINARY) = CAST(%s AS BINARY)"
_PRUNE_SQL = (
    "DELETE a FROM address AS a LEFT JOIN `{keys}` AS k"
    " ON a.latitude = k.latitude AND a.longitude = k.longitude"
    " WHERE k.latitude IS NULL AND "
    + _SAME_FILE.format("a")
    + " AND (a.latitude > CAST(%s AS DECIMAL(10,8))"
    " OR (a.latitude = CAST(%s AS DECIMAL(10,8)) AND a.longitude >= CAST(%s AS DECIMAL(11,8))))"
    " AND (a.latitude < CAST(%s AS DECIMAL(10,8))"
    " OR (a.latitude = CAST(%s AS DECIMAL(10,8)) AND a.longitude < CAST(%s AS DECIMAL(11,8))))"
)
_PRUNE_REJECTS_SQL = (
    "DELETE r FROM reject AS r LEFT JOIN `{kept}` AS k"
    " ON k.source_line = r.source_line AND CAST(k.reason AS BINARY) = CAST(r.reason AS BINARY)"
    " WHERE k.reason IS NULL AND " + _SAME_FILE.format("r") + " AND r.reason IN ({reasons})"
)


def prune(
    cur: pymysql.cursors.Cursor,
    source: str,
    keep: pl.DataFrame,
    bounds: tuple[str, str, str, str],
    *,
    url: str,
) -> int:
    """Delete the rows of ``source`` within ``bounds`` whose coordinate ``keep`` lacks.

    ``keep`` holds :func:`~etl4all.warehouse.table.key_frame` rows and ``bounds`` is
    :func:`~etl4all.warehouse.table.key_range`. Returns the rows deleted.
    """
    keys = keys_table(cur, keep, url=url)
    low_lat, low_lon, high_lat, high_lon = bounds
    cur.execute(
        _PRUNE_SQL.format(keys=keys),
        (source, low_lat, low_lat, low_lon, high_lat, high_lat, high_lon),
    )
    deleted = cur.rowcount
    cur.execute(f"DROP TEMPORARY TABLE `{keys}`")
    return int(deleted)


def prune_rejects(
    cur: pymysql.cursors.Cursor, source: str, keep: pl.DataFrame, reasons: Sequence[str]
) -> int:
    """Delete the ``reasons`` rejects of ``source`` whose (line, reason) ``keep`` lacks."""
    if not reasons:
        return 0
    kept = f"_etl4all_kept_{uuid.uuid4().hex[:16]}"
    cur.execute(
        f"CREATE TEMPORARY TABLE `{kept}`"
        " (source_line INT UNSIGNED NOT NULL, reason VARCHAR(32) NOT NULL)"
    )
    rows = keep.select("line", "reason").rows()
    if rows:
        cur.executemany(f"INSERT INTO `{kept}` (source_line, reason) VALUES (%s, %s)", rows)
    cur.execute(
        _PRUNE_REJECTS_SQL.format(kept=kept, reasons=", ".join(["%s"] * len(reasons))),
        (source, *reasons),
    )
    deleted = cur.rowcount
    cur.execute(f"DROP TEMPORARY TABLE `{kept}`")
    return int(deleted)
