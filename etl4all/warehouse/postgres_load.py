"""PostgreSQL bulk load in the caller's transaction: ``COPY … FROM STDIN`` into a staging table,
then merges driven by the unique indexes.

:func:`merge` loads a batch (the lookup's split into inserts and updates is ignored: every
row is matched on the coordinate's unique index):

1. all rows go to a temporary staging table (dropped at commit) with one ``COPY`` in text
   format, the frame encoded by Polars (:mod:`etl4all.warehouse.bulk_text`), so no Python
   loop touches a row;
2. ``INSERT … SELECT … ON CONFLICT (latitude, longitude) DO NOTHING`` inserts the new
   coordinates in key order (a coordinate another loader inserts meanwhile waits for it,
   then is skipped; two loaders wait on each other's keys in one order, never in a cycle);
3. one ``UPDATE … FROM`` the staging table applies the update rule
   (:func:`etl4all.warehouse.table.merge_sql`) to the stored rows that changed or whose
   provenance is smaller; the rows step 2 inserted compare equal and are left alone;
4. the files' memberships come from the staging table joined with ``source_file`` and go to
   ``address_source`` with ``INSERT … ON CONFLICT (file_id, latitude, longitude) DO UPDATE``,
   which keeps per file and coordinate the newest version and within it the smallest line; in
   a file that had other versions, rows whose record moved to another line follow it.

:func:`merge_rejects` stages rejects the same way; :func:`keys_table` stages keys for lookups
and prunes. Every value travels in the ``COPY`` stream or as a parameter.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

import polars as pl
import psycopg

from etl4all.warehouse import bulk_text, file_versions, table

STAGE = "_etl4all_stage"
KEYS = "_etl4all_keys"
_REJECTS = "_etl4all_rejects"
_COLUMNS = ", ".join(table.COLUMNS)
_NOW = "(now() AT TIME ZONE 'UTC')"
_BYTES = '{} COLLATE "C"'
"""Text compared byte by byte, whatever the database's collation."""
_CHANGED = table.changed_sql("{s} IS DISTINCT FROM {a}")
_SMALLER = table.smaller_sql(_BYTES)
_SAME = "{a}.latitude = {b}.latitude AND {a}.longitude = {b}.longitude"

_INSERT_SQL = (
    f"INSERT INTO address ({_COLUMNS}, created_at, updated_at)"
    f" SELECT {_COLUMNS}, {_NOW}, {_NOW} FROM {STAGE}"
    " ORDER BY latitude, longitude"  # loaders racing on keys take them in one order
    " ON CONFLICT (latitude, longitude) DO NOTHING"
)
_UPDATE_SQL = (
    "UPDATE address AS a SET "
    + table.merge_sql(stored="a", changed=_CHANGED, smaller=_SMALLER)
    + f", updated_at = {_NOW} FROM {STAGE} AS s WHERE "
    + _SAME.format(a="a", b="s")
    + f" AND ({_CHANGED} OR {_SMALLER})"
)
_NEWER = (
    "(excluded.version > m.version"
    " OR (excluded.version = m.version AND excluded.source_line < m.source_line))"
)
_MEMBERS_SQL = (
    "INSERT INTO address_source AS m (file_id, latitude, longitude, source_line, distance_km,"
    " bearing_deg, version, first_version)"
    " SELECT f.id, s.latitude, s.longitude, s.source_line, s.distance_km, s.bearing_deg,"
    " COALESCE(%(version)s, f.version), COALESCE(%(version)s, f.version)"
    f" FROM {STAGE} AS s JOIN source_file AS f ON f.name = s.source_file"
    " ON CONFLICT (file_id, latitude, longitude) DO UPDATE SET "
    + ", ".join(
        f"{c} = CASE WHEN {_NEWER} THEN excluded.{c} ELSE m.{c} END"
        for c in ("distance_km", "bearing_deg", "source_line")
    )
    # a newer version that holds it again takes back an older prune's mark
    + ", dropped_by = CASE WHEN excluded.version > m.dropped_by THEN NULL ELSE m.dropped_by END"
    ", version = GREATEST(m.version, excluded.version)"
)
_MOVED_SQL = (
    "UPDATE address AS a SET source_line = m.source_line, distance_km = m.distance_km,"
    " bearing_deg = m.bearing_deg"
    f" FROM {STAGE} AS s JOIN address_source AS m ON m.file_id = %(id)s AND "
    + _SAME.format(a="m", b="s")
    + " WHERE "
    + _SAME.format(a="a", b="s")
    + " AND a.source_file = %(name)s AND a.source_line <> m.source_line"
)
_REJECT_COLUMNS = ("source", "line", "reason", "text", "detail", "reasons", "version")
_REJECT_VERSION_SQL = (
    f"UPDATE reject AS r SET version = s.version, text = s.text, detail = s.detail,"
    f" reasons = s.reasons FROM {_REJECTS} AS s"
    " WHERE r.source_file = s.source AND r.source_line = s.line AND r.reason = s.reason"
    " AND COALESCE(r.version, 0) < s.version"
)
_REJECT_SQL = (
    "INSERT INTO reject"
    " (source_file, source_line, reason, text, detail, reasons, version, first_version)"
    f" SELECT source, line, reason, text, detail, reasons, version, version FROM {_REJECTS}"
    " ON CONFLICT (source_file, source_line, reason) DO NOTHING"
)


def copy_in(cur: psycopg.Cursor, frame: pl.DataFrame, into: str, columns: Sequence[str]) -> None:
    """``COPY`` ``frame`` (its columns in the order of ``columns``) into table ``into``."""
    text = io.BytesIO()
    bulk_text.write(bulk_text.escaped(frame, nul=False), text)
    with cur.copy(f"COPY {into} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(text.getvalue())


def merge(
    cur: psycopg.Cursor,
    rows: pl.DataFrame,
    *,
    version: int | None,
    moved: tuple[int, str] | None = None,
) -> tuple[int, int]:
    """Load :func:`~etl4all.warehouse.table.load_rows` rows (both frames in one) and their
    memberships at ``version`` (None: each file's current version); ``moved``: the file
    (id, name) whose rows follow their records to other lines. Returns (inserted, updated).
    """
    cur.execute(
        f"CREATE TEMPORARY TABLE {STAGE} ON COMMIT DROP AS"
        f" SELECT {_COLUMNS} FROM address WITH NO DATA"
    )
    copy_in(cur, rows, STAGE, table.COLUMNS)
    cur.execute(_INSERT_SQL)
    inserted = cur.rowcount
    cur.execute(_UPDATE_SQL)
    updated = cur.rowcount
    cur.execute(_MEMBERS_SQL, {"version": version})
    if moved is not None:
        cur.execute(_MOVED_SQL, {"id": moved[0], "name": moved[1]})
    cur.execute(f"DROP TABLE {STAGE}")
    return inserted, updated


def merge_rejects(
    cur: psycopg.Cursor,
    rejects: pl.DataFrame,
    files: dict[str, tuple[int, int]],
    version: int | None,
) -> int:
    """Record ``rejects`` (``frames.REJECTS_SCHEMA``) at ``version`` (None: their files'
    current versions, ``files``: name → (id, version)); a reject already there is kept, at
    the newer version. Returns the rows added."""
    at = file_versions.recorded_at(files, version, "source")
    rows = rejects.with_columns(at.alias("version")).select(_REJECT_COLUMNS)
    cur.execute(
        f'CREATE TEMPORARY TABLE {_REJECTS} (source TEXT COLLATE "C" NOT NULL,'
        " line BIGINT NOT NULL, reason TEXT NOT NULL, text TEXT, detail TEXT, reasons TEXT,"
        " version BIGINT NOT NULL) ON COMMIT DROP"
    )
    copy_in(cur, rows, _REJECTS, _REJECT_COLUMNS)
    cur.execute(_REJECT_VERSION_SQL)
    cur.execute(_REJECT_SQL)
    added = cur.rowcount
    cur.execute(f"DROP TABLE {_REJECTS}")
    return added


def keys_table(cur: psycopg.Cursor, keys: pl.DataFrame) -> str:
    """A temporary table (dropped at commit) holding
    :func:`~etl4all.warehouse.table.key_frame` rows; its name."""
    cur.execute(
        f"CREATE TEMPORARY TABLE {KEYS} (key TEXT NOT NULL, latitude NUMERIC(10,8) NOT NULL,"
        " longitude NUMERIC(11,8) NOT NULL) ON COMMIT DROP"
    )
    columns = ("key", "latitude", "longitude")
    copy_in(cur, keys.select(columns), KEYS, columns)
    return KEYS


def find_keys(cur: psycopg.Cursor, keys: pl.DataFrame) -> pl.Series:
    """The ``key`` values of :func:`~etl4all.warehouse.table.key_frame` rows stored."""
    name = keys_table(cur, keys)
    cur.execute(f"SELECT k.key FROM {name} AS k JOIN address AS a ON " + _SAME.format(a="a", b="k"))
    found = pl.Series("key", [row[0] for row in cur.fetchall()], dtype=pl.String)
    cur.execute(f"DROP TABLE {name}")
    return found


def find_answers(
    cur: psycopg.Cursor, keys: pl.DataFrame, geocoder: str, since: dt.datetime
) -> pl.DataFrame:
    """``key`` and the geocode columns of the :func:`~etl4all.warehouse.table.key_frame` rows
    ``keys`` stored, answered by ``geocoder`` at naive UTC ``since`` or later."""
    name = keys_table(cur, keys)
    cur.execute(
        f"SELECT k.key, {table.ANSWER_COLUMNS} FROM {name} AS k JOIN address AS a ON "
        + _SAME.format(a="a", b="k")
        + " WHERE a.geocoder = %s AND a.geocoded_at >= %s",
        (geocoder, since),
    )
    names = [column.name for column in cur.description or ()]
    rows = cur.fetchall()
    cur.execute(f"DROP TABLE {name}")
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
