"""MySQL / MariaDB warehouse, loaded with ``LOAD DATA LOCAL INFILE``.

URL: ``mysql://user:password@host:3306/database`` (password URL-escaped). Query options:
``connect_timeout`` (seconds, default 10), ``read_timeout`` (seconds, default none),
``ssl_ca`` (a CA file: TLS with the server's identity verified; use it in production).
Driver: PyMySQL (``pip install 'etl4all[mysql]'``).

The server must allow ``LOAD DATA LOCAL`` (``local_infile=ON``); this is checked when the
warehouse is built. ``local_infile`` is enabled on this class's own connection only, because
the server decides which client file is sent: connect only to a server you trust.

A load is one transaction:

1. the lookup's *inserts* go to ``address`` with one ``LOAD DATA`` from a temporary TSV file;
   rows the server skips as duplicates (a stale lookup) are staged with the updates;
2. the *updates* go to a per-batch ``TEMPORARY`` staging table with a second ``LOAD DATA``;
3. one joined ``UPDATE`` marks each staged row with the id it matches and whether its
   address changed or its provenance is smaller; a second ``UPDATE`` applies the marks,
   so no assignment depends on the order MySQL evaluates a multi-table ``SET`` in;
4. staged rows that matched nothing (a stale lookup) are inserted.

After every ``LOAD DATA`` the affected rows and the warning count are checked: the server
turns bad values into warnings under ``LOCAL``, so any warning fails the batch with the
``SHOW WARNINGS`` text, and nothing is committed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, unquote

import polars as pl
import pymysql
import pymysql.cursors

from etl4all import urls
from etl4all.closing import Closing
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.warehouse import common
from etl4all.warehouse.base import CHANGE_FIELDS, LoadResult

log = logging.getLogger(__name__)

LOCAL_INFILE_HINT = (
    "LOAD DATA LOCAL is disabled on the server: enable local_infile on the server "
    "(SET GLOBAL local_infile=1 / --local-infile=1)"
)
_OPTIONS = {"connect_timeout", "read_timeout", "ssl_ca"}
_DATABASE = re.compile(r"^[A-Za-z0-9_$]{1,64}$")

_LOCAL_INFILE = {1148, 3948, 2068}
_SETUP = {1044, 1045, 1046, 1049, 1142, 1146, 1227}
_DATA = {1048, 1264, 1265, 1292, 1366, 1406, 1411, 1690}
_RETRYABLE = {1040, 1053, 1062, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055, 4031}
_DUPLICATE = 1062
_UNKNOWN_DATABASE = 1049

_FIELDS = (
    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
)
_NOW = "UTC_TIMESTAMP(6)"


@contextlib.contextmanager
def _errors(what: str, url: str) -> Iterator[None]:
    """Translate PyMySQL (and socket/file) errors raised by ``what`` on ``url``."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        text = f"{what} on {url} failed: {exc}"
        if code in _LOCAL_INFILE:
            raise ConfigError(f"{what} on {url}: {LOCAL_INFILE_HINT} ({exc})") from exc
        if code in _SETUP:
            raise ConfigError(f"{text}; check the user's grants and run `etl4all init-db`") from exc
        if code in _RETRYABLE:
            raise WarehouseError(f"{text}; retry later") from exc
        if code in _DATA or isinstance(exc, pymysql.err.DataError | pymysql.err.IntegrityError):
            raise DataError(f"{text}; the table refused a value") from exc
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
            raise WarehouseError(f"{text}; retry later") from exc
        raise
    except OSError as exc:
        raise WarehouseError(f"{what} on {url} failed: {exc}; retry later") from exc


def _binary_equal(new: str, old: str, column: str) -> str:
    """SQL: NULL-safe, byte-exact equality (collations ignore case and trailing spaces)."""
    return f"CAST({new}.{column} AS BINARY) <=> CAST({old}.{column} AS BINARY)"


_CHANGED = " OR ".join(f"NOT ({_binary_equal('s', 'a', c)})" for c in CHANGE_FIELDS)
_SMALLER = (
    "CAST(s.source_file AS BINARY) < CAST(a.source_file AS BINARY)"
    " OR (CAST(s.source_file AS BINARY) = CAST(a.source_file AS BINARY)"
    " AND s.source_line < a.source_line)"
)
_COLUMNS = ", ".join(common.COLUMNS)
_MARK_SQL = (
    "UPDATE `{stage}` AS s JOIN address AS a"
    " ON a.latitude = s.latitude AND a.longitude = s.longitude"
    f" SET s.target_id = a.id, s.chg = ({_CHANGED}), s.sm = ({_SMALLER})"
)
_APPLY_SQL = (
    f"INSERT INTO address (id, {_COLUMNS}, created_at, updated_at)"
    f" SELECT s.target_id, {', '.join('s.' + c for c in common.COLUMNS)}, {_NOW}, {_NOW}"
    " FROM `{stage}` AS s WHERE s.target_id IS NOT NULL AND (s.chg OR s.sm)"
    " ON DUPLICATE KEY UPDATE "
    + ", ".join(f"{c} = s.{c}" for c in CHANGE_FIELDS)
    + ", geocoded_at = IF(s.chg, s.geocoded_at, address.geocoded_at), "
    + ", ".join(f"{c} = IF(s.sm, s.{c}, address.{c})" for c in common.PROVENANCE)
    + f", updated_at = {_NOW}"
)
_INSERT_SQL = (
    f"INSERT INTO address ({_COLUMNS}, created_at, updated_at)"
    f" SELECT {_COLUMNS}, {_NOW}, {_NOW} FROM `{{stage}}` WHERE target_id IS NULL"
)


_INSERT_REJECT = (
    "INSERT INTO reject (source_file, source_line, reason, text) VALUES (%s, %s, %s, %s) "
    "ON DUPLICATE KEY UPDATE id = id"
)


class MySqlWarehouse(Closing):
    """The address table in MySQL or MariaDB; a context manager.

    Args:
        url: ``mysql://user:password@host:port/database[?options]``.

    Raises:
        ConfigError: a bad URL, bad credentials, or ``local_infile`` off on the server.
        WarehouseError: the server cannot be reached.
    """

    def __init__(self, *, url: str) -> None:
        parts = urls.split(url)
        self._raw_url = url  # for connectorx in read(); never logged
        self._url = urls.redact(url)
        if parts.scheme != "mysql":
            raise ConfigError(f"{self._url} is not a mysql://user:password@host/db URL")
        self.database = parts.path.lstrip("/")
        if not _DATABASE.match(self.database):
            raise ConfigError(f"{self._url}: name a database (letters, digits, _ and $)")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if unknown := set(options) - _OPTIONS:
            raise ConfigError(f"{self._url}: unknown options {sorted(unknown)}; known {_OPTIONS}")
        try:
            self._params = {
                "host": parts.hostname or "127.0.0.1",
                "port": parts.port or 3306,
                "user": unquote(parts.username or "root"),
                "password": unquote(parts.password or ""),
                "connect_timeout": float(options.get("connect_timeout", 10)),
                "read_timeout": float(options["read_timeout"])
                if "read_timeout" in options
                else None,
            }
        except ValueError as exc:
            raise ConfigError(f"{self._url}: {exc}") from exc
        if "ssl_ca" in options:
            self._params.update(ssl_ca=options["ssl_ca"], ssl_verify_identity=True)
        self._conn: pymysql.Connection | None = None
        self._stage_engine = "InnoDB"
        self._connection()

    def _connection(self) -> pymysql.Connection:
        """The open connection; a new one (checked for ``local_infile``) when needed."""
        if self._conn is not None and self._conn.open:
            return self._conn
        with _errors("connecting", self._url):
            conn = pymysql.connect(
                **self._params, charset="utf8mb4", autocommit=False, local_infile=True
            )
            with conn.cursor() as cur:
                cur.execute("SELECT @@GLOBAL.local_infile")
                if not (row := cur.fetchone()) or not int(row[0]):
                    conn.close()
                    raise ConfigError(f"{self._url}: {LOCAL_INFILE_HINT}")
                cur.execute("SET time_zone = '+00:00'")
                cur.execute("SELECT VERSION()")
                version = str((cur.fetchone() or ("",))[0])
                try:
                    cur.execute(f"USE `{self.database}`")
                except pymysql.err.MySQLError as exc:
                    if exc.args[0] != _UNKNOWN_DATABASE:  # init() creates it
                        raise
        # Staging tables are scratch space: MariaDB's Aria skips InnoDB's undo logging.
        self._stage_engine = "Aria" if "mariadb" in version.lower() else "InnoDB"
        self._conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[pymysql.cursors.Cursor]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        try:
            with _errors(what, self._url):
                conn = self._connection()
                try:
                    with conn.cursor() as cur:
                        yield cur
                    conn.commit()
                except BaseException:
                    with contextlib.suppress(pymysql.err.MySQLError, OSError):
                        conn.rollback()
                    raise
        except WarehouseError:
            self._drop()  # the session state is unknown: start afresh next time
            raise

    def init(self) -> None:
        """Create the database (utf8mb4) and the tables from ``sql/mysql/`` (idempotent)."""
        with self._transaction("creating the tables") as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{self.database}`"
                " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cur.execute(f"USE `{self.database}`")
            for statement in common.ddl_statements("mysql"):
                cur.execute(statement)

    def load(self, inserts: pl.DataFrame, updates: pl.DataFrame) -> LoadResult:
        """Insert new and update known coordinates in one transaction.

        Raises:
            DataError: a value the table refuses (any ``LOAD DATA`` warning); nothing committed.
            WarehouseError: the database failed (nothing is committed; retry).
        """
        started = time.perf_counter()
        new, known = common.load_rows(inserts, updates)
        total = new.height + known.height
        result = LoadResult()
        if not total:
            return result
        stage = f"_etl4all_stage_{uuid.uuid4().hex[:16]}"
        with (
            tempfile.TemporaryDirectory(prefix="etl4all-load-") as tmp,
            self._transaction(f"loading {total} rows") as cur,
        ):
            cur.execute(
                f"CREATE TEMPORARY TABLE `{stage}` (target_id BIGINT NULL,"
                " chg BOOL NOT NULL DEFAULT 0, sm BOOL NOT NULL DEFAULT 0)"
                f" ENGINE={self._stage_engine} SELECT {_COLUMNS} FROM address LIMIT 0"
            )
            try:
                self._load_stage(cur, Path(tmp), stage, new, known, result)
            finally:
                with contextlib.suppress(pymysql.err.MySQLError, OSError):
                    cur.execute(f"DROP TEMPORARY TABLE IF EXISTS `{stage}`")
        result.unchanged = total - result.inserted - result.updated
        log.debug(
            "loaded %d rows into %s: inserted=%d updated=%d unchanged=%d in %.3fs",
            total,
            self._url,
            result.inserted,
            result.updated,
            result.unchanged,
            time.perf_counter() - started,
        )
        return result

    def _load_stage(
        self,
        cur: pymysql.cursors.Cursor,
        tmp: Path,
        stage: str,
        new: pl.DataFrame,
        known: pl.DataFrame,
        result: LoadResult,
    ) -> None:
        """The body of :meth:`load`: fills ``result.inserted`` and ``result.updated``."""
        staged = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Write the updates' file while the server loads the inserts.
            known_path = tmp / "updates.tsv"
            written = pool.submit(common.write_tsv, known, known_path) if known.height else None
            if new.height:
                path = tmp / "inserts.tsv"
                common.write_tsv(new, path)
                result.inserted = self._load_file(cur, path, new.height, "address", True)
                if result.inserted < new.height:  # a stale lookup: they exist, maybe changed
                    staged += self._load_file(cur, path, new.height, stage)
            if written is not None:
                written.result()
                staged += self._load_file(cur, known_path, known.height, stage)
        if staged:
            matched = _execute(cur, _MARK_SQL.format(stage=stage))
            # Each row goes down the duplicate-id path: 2 affected rows per updated row.
            result.updated = _execute(cur, _APPLY_SQL.format(stage=stage)) // 2
            if matched < staged:
                result.inserted += _execute(cur, _INSERT_SQL.format(stage=stage))

    def _load_file(
        self,
        cur: pymysql.cursors.Cursor,
        path: Path,
        rows: int,
        table: str,
        skip_duplicates: bool = False,
    ) -> int:
        """``LOAD DATA`` ``path`` into ``table``; the rows loaded.

        Only duplicate-key skips are tolerated, and only when ``skip_duplicates``.

        Raises:
            DataError: a warning, or rows missing, with the ``SHOW WARNINGS`` text.
        """
        stamps = f" SET created_at = {_NOW}, updated_at = {_NOW}" if table == "address" else ""
        cur.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` {_FIELDS} ({_COLUMNS}){stamps}",
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
            f"LOAD DATA into {table} on {self._url}: {loaded} of {rows} rows loaded, "
            f"{warnings} warnings: {detail}; nothing was committed"
        )

    def existing(self, keys: pl.Series) -> pl.Series:
        """Those canonical coordinate keys present in the table, in the order given."""
        frame = common.key_frame(keys)
        if frame.is_empty():
            return keys.clear()
        table = f"_etl4all_keys_{uuid.uuid4().hex[:16]}"
        with (
            tempfile.TemporaryDirectory(prefix="etl4all-keys-") as tmp,
            self._transaction(f"looking up {frame.height} keys") as cur,
        ):
            path = Path(tmp) / "keys.tsv"
            common.write_tsv(frame, path)
            cur.execute(
                f"CREATE TEMPORARY TABLE `{table}` (`key` VARCHAR(32) NOT NULL,"
                " latitude DECIMAL(10,8) NOT NULL, longitude DECIMAL(11,8) NOT NULL)"
            )
            cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` {_FIELDS}", (str(path),))
            if cur.rowcount != frame.height or cur.warning_count:
                raise DataError(f"keys did not load exactly: {cur.connection.show_warnings()}")
            cur.execute(
                f"SELECT k.`key` FROM `{table}` AS k JOIN address AS a"
                " ON a.latitude = k.latitude AND a.longitude = k.longitude"
            )
            found = pl.Series("key", [row[0] for row in cur.fetchall()], dtype=pl.String)
            cur.execute(f"DROP TEMPORARY TABLE `{table}`")
        return common.present(keys, found)

    def load_rejects(self, rejects: pl.DataFrame) -> int:
        """Record rejects in the ``reject`` table (one multi-row insert); rows added."""
        if rejects.is_empty():
            return 0
        rows = rejects.select("source", "line", "reason", "text").rows()
        with self._transaction(f"recording {len(rows)} rejects") as cur:
            added = cur.executemany(_INSERT_REJECT, rows)
        return int(added or 0)

    def count(self) -> int:
        """Rows in the address table."""
        with self._transaction("counting rows") as cur:
            cur.execute("SELECT COUNT(*) FROM address")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def read(self) -> pl.DataFrame:
        """The whole address table ordered by ``id``, through connectorx.

        See :func:`etl4all.warehouse.read.read_warehouse` (DECIMAL arrives as Float64).
        """
        from etl4all.warehouse.read import read_warehouse

        return read_warehouse(self._raw_url)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection."""
        self._drop()


def _execute(cur: pymysql.cursors.Cursor, sql: str) -> int:
    """Run ``sql``; its affected rows.

    Raises:
        DataError: the statement left warnings.
    """
    cur.execute(sql)
    if cur.warning_count:
        raise DataError(f"{sql.split(' ', 3)[:3]}: {cur.connection.show_warnings()}")
    return cur.rowcount
