"""MySQL bulk load in the caller's transaction: ``LOAD DATA LOCAL INFILE`` from TSV files.

:func:`merge` loads a batch: inserts straight into ``address``, updates through a staging
table and one joined ``UPDATE``, then the files' memberships into ``address_source``;
:func:`merge_rejects` stages rejects the same way; :func:`find_keys` joins keys with
``address``. Every ``LOAD DATA`` is checked for its affected rows and warnings (bad values are
only warnings under ``LOCAL``): any warning fails the batch. The steps and why:
docs/backends.md (Warehouses and the lookup).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pymysql
import pymysql.cursors

from etl4all.errors import DataError
from etl4all.warehouse import bulk_text, file_versions, spool, table

_FIELDS = (
    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
)
_NOW = "UTC_TIMESTAMP(6)"
_DUPLICATE = 1062

_COLUMNS = ", ".join(table.COLUMNS)
_CHANGED = table.changed_sql("NOT (CAST({s} AS BINARY) <=> CAST({a} AS BINARY))")
_SMALLER = table.smaller_sql("CAST({} AS BINARY)")
_MARK_SQL = (
    "UPDATE `{stage}` AS s JOIN address AS a"
    " ON a.latitude = s.latitude AND a.longitude = s.longitude"
    f" SET s.target_id = a.id, s.chg = ({_CHANGED}), s.sm = {_SMALLER}"
)
_APPLY_SQL = (
    f"INSERT INTO address (id, {_COLUMNS}, created_at, updated_at)"
    f" SELECT s.target_id, {', '.join('s.' + c for c in table.COLUMNS)}, {_NOW}, {_NOW}"
    " FROM `{stage}` AS s WHERE s.target_id IS NOT NULL AND (s.chg OR s.sm)"
    " ON DUPLICATE KEY UPDATE "
    + table.merge_sql(stored="address", changed="s.chg", smaller="s.sm")
    + f", updated_at = {_NOW}"
)
_INSERT_SQL = (
    f"INSERT INTO address ({_COLUMNS}, created_at, updated_at)"
    f" SELECT {_COLUMNS}, {_NOW}, {_NOW} FROM `{{stage}}` WHERE target_id IS NULL"
)
MEMBER_COLUMNS = (
    "file_id",
    "latitude",
    "longitude",
    "source_line",
    "distance_km",
    "bearing_deg",
    "version",
    "first_version",
)
"""The columns of ``address_source``, in the order :func:`members` gives them."""
_NEWER = (
    "(VALUES(version) > address_source.version OR (VALUES(version) = address_source.version"
    " AND VALUES(source_line) < address_source.source_line))"
)
_MEMBERS_SQL = (
    f"INSERT INTO address_source ({', '.join(MEMBER_COLUMNS)})"
    f" SELECT {', '.join(MEMBER_COLUMNS)} FROM `{{members}}`"
    # each assignment sees the ones before it: version last
    " ON DUPLICATE KEY UPDATE "
    + ", ".join(
        f"{c} = IF({_NEWER}, VALUES({c}), address_source.{c})"
        for c in ("distance_km", "bearing_deg", "source_line")
    )
    # a newer version that holds it again takes back an older prune's mark
    + ", dropped_by = IF(VALUES(version) > address_source.dropped_by, NULL,"
    " address_source.dropped_by)" + ", version = GREATEST(address_source.version, VALUES(version))"
)
_MOVED_SQL = (
    "UPDATE address AS a JOIN `{members}` AS s"
    " ON a.latitude = s.latitude AND a.longitude = s.longitude"
    " JOIN address_source AS m"
    " ON m.file_id = s.file_id AND m.latitude = s.latitude AND m.longitude = s.longitude"
    " SET a.source_line = m.source_line, a.distance_km = m.distance_km,"
    " a.bearing_deg = m.bearing_deg"
    " WHERE CAST(a.source_file AS BINARY) = CAST(%s AS BINARY)"
    " AND a.source_line <> m.source_line"
)
_REJECT_COLUMNS = ("source", "line", "reason", "text", "detail", "reasons", "version")
_REJECT_VERSION_SQL = (
    "UPDATE reject AS r JOIN `{stage}` AS s"
    " ON r.source_file = s.source AND r.source_line = s.line AND r.reason = s.reason"
    " SET r.version = s.version, r.text = s.text, r.detail = s.detail, r.reasons = s.reasons"
    " WHERE CAST(r.source_file AS BINARY) = CAST(s.source AS BINARY)"
    " AND COALESCE(r.version, 0) < s.version"
)
_REJECT_SQL = (
    "INSERT INTO reject"
    " (source_file, source_line, reason, text, detail, reasons, version, first_version)"
    " SELECT source, line, reason, text, detail, reasons, version, version FROM `{stage}`"
    " ON DUPLICATE KEY UPDATE id = id"
)


def write_tsv(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` as a new ``LOAD DATA`` TSV file (no header, mode 0600); the rows
    written.

    Raises:
        ConfigError: the spool folder cannot be written to.
        WarehouseError: writing failed for another reason (a full disk): the message names
            the local folder.
    """
    rows = bulk_text.escaped(frame, nul=True)
    with spool.writing(path, f"writing {path.name}"), open(spool.private_file(path), "wb") as out:
        bulk_text.write(rows, out)
    return frame.height


def _stage_engine(conn: pymysql.Connection) -> str:
    """The engine for staging tables: MariaDB's Aria skips InnoDB's undo logging."""
    return "Aria" if "mariadb" in conn.get_server_info().lower() else "InnoDB"


def members(
    rows: pl.DataFrame, files: dict[str, tuple[int, int]], version: int | None
) -> pl.DataFrame:
    """The ``address_source`` rows (:data:`MEMBER_COLUMNS`) of :func:`load_rows` rows: each
    file (``files``: name → (id, current version)) holds its coordinates at ``version``, or
    at its current version when None."""
    ids = {name: file_id for name, (file_id, _) in files.items()}
    at = file_versions.recorded_at(files, version, "source_file")
    return rows.select(
        pl.col("source_file").replace_strict(ids, return_dtype=pl.Int64).alias("file_id"),
        "latitude",
        "longitude",
        "source_line",
        "distance_km",
        "bearing_deg",
        at.alias("version"),
        at.alias("first_version"),  # kept as it is when the row is there (continuously held)
    )


def merge(
    cur: pymysql.cursors.Cursor,
    new: pl.DataFrame,
    known: pl.DataFrame,
    held: tuple[pl.DataFrame, pl.DataFrame],
    *,
    url: str,
    moved: str | None = None,
    spool_root: Path | None = None,
) -> tuple[int, int]:
    """Load the rows of :func:`~etl4all.warehouse.table.load_rows` and the memberships of
    each (:func:`members` of ``new``, of ``known``) on ``url``; ``moved``: the file whose
    rows follow their records to other lines; ``spool_root``: where the TSV files go
    (:func:`spool.root`).

    Returns (inserted, updated).

    Raises:
        DataError: a ``LOAD DATA`` or a statement left a warning (a refused value).
    """
    stage = f"_etl4all_stage_{uuid.uuid4().hex[:16]}"
    engine = _stage_engine(cur.connection)
    held_new, held_known = held
    with spool.load_folder(spool_root) as tmp, ThreadPoolExecutor(max_workers=1) as pool:
        # The server loads the inserts while the memberships' file is written.
        new_members = tmp / "new_members.tsv"
        written = pool.submit(write_tsv, held_new, new_members) if held_new.height else None
        cur.execute(
            f"CREATE TEMPORARY TABLE `{stage}` (target_id BIGINT NULL,"
            " chg BOOL NOT NULL DEFAULT 0, sm BOOL NOT NULL DEFAULT 0)"
            f" ENGINE={engine} SELECT {_COLUMNS} FROM address LIMIT 0"
        )
        try:
            inserted, updated, straight = _merge_staged(cur, tmp, stage, new, known, url, pool)
        finally:
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                cur.execute(f"DROP TEMPORARY TABLE IF EXISTS `{stage}`")
        if written is not None:
            written.result()
            if not (straight and _held_straight(cur, new_members, held_new.height, url)):
                held_known = pl.concat([held_new, held_known])
        if held_known.height:
            _hold(cur, tmp, held_known, engine, url, moved)
    return inserted, updated


def _held_straight(cur: pymysql.cursors.Cursor, path: Path, rows: int, url: str) -> bool:
    """``LOAD DATA`` the memberships (in ``path``) of coordinates this load inserted into
    ``address`` straight into ``address_source``; whether all went in (one already there,
    which only a membership left without its row would be, then goes through the upsert)."""
    loaded = _load_file(
        cur, path, rows, "address_source", url=url, columns=MEMBER_COLUMNS, skip_duplicates=True
    )
    return loaded == rows


def _hold(
    cur: pymysql.cursors.Cursor,
    tmp: Path,
    held: pl.DataFrame,
    engine: str,
    url: str,
    moved: str | None,
) -> None:
    """Upsert the memberships ``held`` (see :func:`merge`)."""
    name = f"_etl4all_members_{uuid.uuid4().hex[:16]}"
    cur.execute(
        f"CREATE TEMPORARY TABLE `{name}` ENGINE={engine}"
        f" SELECT {', '.join(MEMBER_COLUMNS)} FROM address_source LIMIT 0"
    )
    try:
        path = tmp / "members.tsv"
        write_tsv(held, path)
        _load_file(cur, path, held.height, name, url=url, columns=MEMBER_COLUMNS)
        _execute(cur, _MEMBERS_SQL.format(members=name))
        if moved is not None:
            cur.execute(_MOVED_SQL.format(members=name), (moved,))
    finally:
        with contextlib.suppress(pymysql.err.MySQLError, OSError):
            cur.execute(f"DROP TEMPORARY TABLE IF EXISTS `{name}`")


def merge_rejects(
    cur: pymysql.cursors.Cursor,
    rejects: pl.DataFrame,
    files: dict[str, tuple[int, int]],
    version: int | None,
) -> int:
    """Record ``rejects`` (``frames.REJECTS_SCHEMA``) at ``version`` (None: their files'
    current versions, ``files``: name → (id, version)); a reject already there is kept, at
    the newer version. Returns the rows added."""
    at = file_versions.recorded_at(files, version, "source")
    rows = rejects.with_columns(at.alias("version")).select(_REJECT_COLUMNS).rows()
    stage = f"_etl4all_rejects_{uuid.uuid4().hex[:16]}"
    cur.execute(
        f"CREATE TEMPORARY TABLE `{stage}` (source VARCHAR(512) NOT NULL,"
        " line INT UNSIGNED NOT NULL, reason VARCHAR(32) NOT NULL, text TEXT NULL,"
        " detail VARCHAR(200) NULL, reasons VARCHAR(255) NULL, version BIGINT NOT NULL)"
        " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    try:
        cur.executemany(
            f"INSERT INTO `{stage}` ({', '.join(_REJECT_COLUMNS)})"
            f" VALUES ({', '.join(['%s'] * len(_REJECT_COLUMNS))})",
            rows,
        )
        cur.execute(_REJECT_VERSION_SQL.format(stage=stage))
        cur.execute(_REJECT_SQL.format(stage=stage))
        return int(cur.rowcount)
    finally:
        with contextlib.suppress(pymysql.err.MySQLError, OSError):
            cur.execute(f"DROP TEMPORARY TABLE IF EXISTS `{stage}`")


def _merge_staged(
    cur: pymysql.cursors.Cursor,
    tmp: Path,
    stage: str,
    new: pl.DataFrame,
    known: pl.DataFrame,
    url: str,
    pool: ThreadPoolExecutor,
) -> tuple[int, int, bool]:
    """The body of :func:`merge`, with the staging table ``stage`` created: (inserted,
    updated, whether every row of ``new`` was inserted straight into ``address``)."""
    inserted = updated = staged = 0
    # Write the updates' file while the server loads the inserts.
    known_path = tmp / "updates.tsv"
    written = pool.submit(write_tsv, known, known_path) if known.height else None
    if new.height:
        path = tmp / "inserts.tsv"
        write_tsv(new, path)
        inserted = _load_file(cur, path, new.height, "address", url=url, skip_duplicates=True)
        if inserted < new.height:  # a stale lookup: they exist, maybe changed
            staged += _load_file(cur, path, new.height, stage, url=url)
    straight = inserted == new.height
    if written is not None:
        written.result()
        staged += _load_file(cur, known_path, known.height, stage, url=url)
    if staged:
        matched = _execute(cur, _MARK_SQL.format(stage=stage))
        # Each row goes down the duplicate-id path: 2 affected rows per updated row.
        updated = _execute(cur, _APPLY_SQL.format(stage=stage)) // 2
        if matched < staged:
            inserted += _execute(cur, _INSERT_SQL.format(stage=stage))
    return inserted, updated, straight


def keys_table(
    cur: pymysql.cursors.Cursor, keys: pl.DataFrame, *, url: str, spool_root: Path | None = None
) -> str:
    """A new temporary table holding :func:`~etl4all.warehouse.table.key_frame` rows; its name.

    The caller drops it. ``spool_root``: where the TSV file goes (:func:`spool.root`).
    """
    name = f"_etl4all_keys_{uuid.uuid4().hex[:16]}"
    cur.execute(
        f"CREATE TEMPORARY TABLE `{name}` (`key` VARCHAR(32) NOT NULL,"
        " latitude DECIMAL(10,8) NOT NULL, longitude DECIMAL(11,8) NOT NULL)"
    )
    if keys.height:
        with spool.load_folder(spool_root) as tmp:
            path = tmp / "keys.tsv"
            write_tsv(keys, path)
            _load_file(cur, path, keys.height, name, url=url, columns=keys.columns)
    return name


def find_answers(
    cur: pymysql.cursors.Cursor,
    keys: pl.DataFrame,
    geocoder: str,
    since: dt.datetime,
    *,
    url: str,
    spool_root: Path | None = None,
) -> pl.DataFrame:
    """``key`` and the geocode columns of the :func:`~etl4all.warehouse.table.key_frame` rows
    ``keys`` stored on ``url``, answered by ``geocoder`` at naive UTC ``since`` or later."""
    name = keys_table(cur, keys, url=url, spool_root=spool_root)
    cur.execute(
        f"SELECT k.`key`, {table.ANSWER_COLUMNS} FROM `{name}` AS k JOIN address AS a"
        " ON a.latitude = k.latitude AND a.longitude = k.longitude"
        " WHERE a.geocoder = %s AND a.geocoded_at >= %s",
        (geocoder, since),
    )
    rows = cur.fetchall()
    names = [column[0] for column in cur.description or ()]
    cur.execute(f"DROP TEMPORARY TABLE `{name}`")
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)


def find_keys(
    cur: pymysql.cursors.Cursor, keys: pl.DataFrame, *, url: str, spool_root: Path | None = None
) -> pl.Series:
    """The ``key`` values of :func:`~etl4all.warehouse.table.key_frame` rows stored on ``url``."""
    name = keys_table(cur, keys, url=url, spool_root=spool_root)
    cur.execute(
        f"SELECT k.`key` FROM `{name}` AS k JOIN address AS a"
        " ON a.latitude = k.latitude AND a.longitude = k.longitude"
    )
    found = pl.Series("key", [row[0] for row in cur.fetchall()], dtype=pl.String)
    cur.execute(f"DROP TEMPORARY TABLE `{name}`")
    return found


def _load_file(
    cur: pymysql.cursors.Cursor,
    path: Path,
    rows: int,
    into: str,
    *,
    url: str,
    columns: Sequence[str] = table.COLUMNS,
    skip_duplicates: bool = False,
) -> int:
    """``LOAD DATA`` the TSV file ``path`` (``rows`` rows of ``columns``) into ``into`` on ``url``.

    Loads into ``address`` also set ``created_at`` and ``updated_at``. Only duplicate-key
    skips are tolerated, and only when ``skip_duplicates``. Returns the rows loaded.

    Raises:
        DataError: a warning, or rows missing, with the ``SHOW WARNINGS`` text.
    """
    stamps = f" SET created_at = {_NOW}, updated_at = {_NOW}" if into == "address" else ""
    cur.execute(
        f"LOAD DATA LOCAL INFILE %s INTO TABLE `{into}` {_FIELDS}"
        f" ({', '.join(f'`{c}`' for c in columns)}){stamps}",
        (str(path),),
    )
    loaded, warnings = cur.rowcount, cur.warning_count
    if loaded == rows and not warnings:
        return loaded
    shown = cur.connection.show_warnings() if warnings else ()
    only_duplicates = all(int(w[1]) == _DUPLICATE for w in shown)
    if skip_duplicates and only_duplicates and warnings == rows - loaded:
        return loaded
    detail = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in shown[:10])
    raise DataError(
        f"LOAD DATA into {into} on {url}: {loaded} of {rows} rows loaded, "
        f"{warnings} warnings: {detail}; nothing was committed"
    )


def _execute(cur: pymysql.cursors.Cursor, sql: str) -> int:
    """Run ``sql``; its affected rows.

    Raises:
        DataError: the statement left warnings.
    """
    cur.execute(sql)
    if cur.warning_count:
        raise DataError(f"{sql.split(' ', 3)[:3]}: {cur.connection.show_warnings()}")
    return cur.rowcount
