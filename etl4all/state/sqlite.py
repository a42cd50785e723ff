"""State in a local SQLite file: the embedded-mode default.

URL: ``sqlite:///path/to/state.db`` (relative and absolute paths: docs/configuration.md,
URLs); no query options; the parent folder is created; in-memory databases are refused (each
thread opens its own connection). Driver: the standard library's ``sqlite3``, in WAL mode with
a 30 s busy timeout, so the threads and processes of one machine share the file. Its tables:
docs/backends.md (State).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING

from etl4all import urls
from etl4all.clock import REAL, Clock
from etl4all.closing import Closing
from etl4all.errors import ConfigError, StoreConfigError, StoreError
from etl4all.perthread import PerThread
from etl4all.state.base import Claim, FileMark, Holder, checked_ttl, new_token, owner
from etl4all.state.cache import PayloadCache

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another writer before failing with StoreError."""

_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
"""Primary result codes of a file SQLite cannot use as a database: a configuration fault."""
_REFUSED = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_AUTH,
}
"""Primary result codes of a file or folder this user may not write: a configuration fault."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS done_files (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT NOT NULL,
    done_at REAL NOT NULL,
    partial_since REAL,
    mark TEXT
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS geocode_cache (
    scope TEXT NOT NULL,
    lat_key INTEGER NOT NULL,
    lon_key INTEGER NOT NULL,
    payload TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (scope, lat_key, lon_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS geocode_cache_expires ON geocode_cache (expires_at);
"""

_CLAIM = """
INSERT INTO claims (key, token, expires_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
WHERE claims.expires_at <= ? OR claims.token = ?
"""

_PUT = """
INSERT INTO geocode_cache (scope, lat_key, lon_key, payload, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (scope, lat_key, lon_key)
DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at
"""

_GET = """
SELECT c.lat_key, c.lon_key, c.payload
FROM temp.cache_keys AS k
JOIN geocode_cache AS c ON c.scope = ? AND c.lat_key = k.lat_key AND c.lon_key = k.lon_key
WHERE c.expires_at > ?
ORDER BY k.rowid
"""

_DONE = """
SELECT key, size, mtime, sha256, partial_since, mark FROM done_files
WHERE key IN (SELECT value FROM json_each(?))
"""

_MARK = """
INSERT INTO done_files (key, size, mtime, sha256, done_at, partial_since, mark)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    size = excluded.size, mtime = excluded.mtime, sha256 = excluded.sha256,
    done_at = excluded.done_at, partial_since = excluded.partial_since, mark = excluded.mark
"""


class SqliteState(PayloadCache, Closing):
    """Claims, done files and the geocode cache in one SQLite file."""

    def __init__(self, *, url: str, clock: Clock = REAL) -> None:
        """Create the folder, the file and the tables; expiries are read on ``clock``.

        Raises:
            ConfigError: the URL names no usable file, the file cannot be created or written,
                or it is not a SQLite database (damaged, or another kind of file).
            StoreError: the database is locked.
        """
        self._safe_url = urls.redact(url)
        self._clock = clock
        self.path = urls.file_path(url)
        if self.path in (":memory:", "") or self.path.startswith("file:"):
            raise ConfigError(
                f"{self._safe_url}: in-memory SQLite is not shared between threads; "
                "use a file, e.g. sqlite:///.etl4all/state.db"
            )
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self._safe_url}: cannot create folder {folder}: {exc}") from exc
        if not os.access(folder, os.W_OK | os.X_OK):  # SQLite's -wal and -shm files go there
            raise StoreConfigError(f"SQLite state {self._safe_url}: {self._writable()}")
        self._connections = PerThread(self._connect, sqlite3.Connection.close)
        with self._errors("create the tables"):
            conn = self._conn()
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(done_files)")}
            for column, kind in (("partial_since", "REAL"), ("mark", "TEXT")):
                if column not in columns:
                    conn.execute(f"ALTER TABLE done_files ADD COLUMN {column} {kind}")

    def __repr__(self) -> str:
        return f"SqliteState({self.path!r})"

    # -- claims ---------------------------------------------------------------------------

    def claim(self, key: str, ttl: float, *, replace: str | None = None) -> str | None:
        """Take a lease on ``key`` for ``ttl`` seconds (or one ``replace`` holds); a token, or
        None if someone holds it."""
        ttl = checked_ttl(ttl)
        token = new_token()
        now = self._clock.wall()
        with self._errors(f"claim {key}"), self._transaction() as conn:
            won = conn.execute(_CLAIM, (key, token, now + ttl, now, replace)).rowcount == 1
        log.debug("claim %s on %s: %s", key, self._safe_url, "won" if won else "held")
        return token if won else None

    def holder(self, key: str) -> Holder | None:
        """Who holds the lease on ``key`` now."""
        now = self._clock.wall()
        sql = "SELECT token, expires_at FROM claims WHERE key = ? AND expires_at > ?"
        with self._errors(f"read the claim on {key}"):
            row = self._conn().execute(sql, (key, now)).fetchone()
        return None if row is None else Holder(row[0], row[1] - now)

    def renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend the lease on ``key`` to ``ttl`` seconds from now if ``token`` still holds it.

        Returns:
            False when the lease expired or was taken over: give up the work.
        """
        ttl = checked_ttl(ttl)
        now = self._clock.wall()
        sql = "UPDATE claims SET expires_at = ? WHERE key = ? AND token = ? AND expires_at > ?"
        with self._errors(f"renew {key}"), self._transaction() as conn:
            kept = conn.execute(sql, (now + ttl, key, token, now)).rowcount == 1
        log.debug("renew %s on %s: %s", key, self._safe_url, "kept" if kept else "lost")
        return kept

    def release(self, key: str, token: str) -> None:
        """Give up the lease on ``key`` if ``token`` still holds it."""
        with self._errors(f"release {key}"), self._transaction() as conn:
            conn.execute("DELETE FROM claims WHERE key = ? AND token = ?", (key, token))
        log.debug("release %s on %s", key, self._safe_url)

    # -- done files -----------------------------------------------------------------------

    def done(self, keys: list[str]) -> dict[str, FileMark]:
        """The marks of those ``keys`` that are done."""
        if not keys:
            return {}
        with self._errors(f"read {len(keys)} done marks"):
            found = self._conn().execute(_DONE, (json.dumps(keys),)).fetchall()
        return {key: self._parse_mark(key, mark, whole) for key, *mark, whole in found}

    def _parse_mark(self, key: str, columns: list[object], whole: str | None) -> FileMark:
        """The done mark of ``key``: its JSON, or the columns an older version wrote."""
        if whole is None:
            return FileMark(*columns)  # type: ignore[arg-type]
        try:
            return FileMark.from_json(whole)
        except (ValueError, TypeError) as exc:
            raise StoreError(
                f"SQLite state {self._safe_url}: malformed done mark of {key}: {whole[:80]!r}; "
                "delete its row of table done_files to process the file again"
            ) from exc

    def mark_done(self, marks: dict[str, FileMark]) -> None:
        """Remember files as done (a later mark of the same key replaces the earlier one)."""
        now = self._clock.wall()
        rows = [
            (key, m.size, m.mtime, m.sha256, now, m.partial_since, m.to_json())
            for key, m in marks.items()
        ]
        with self._errors(f"mark {len(rows)} files done"), self._transaction() as conn:
            conn.executemany(_MARK, rows)

    def done_count(self) -> int:
        """Number of files done."""
        with self._errors("count the done files"):
            (count,) = self._conn().execute("SELECT count(*) FROM done_files").fetchone()
        return int(count)

    def claims(self) -> dict[str, Claim]:
        """The leases held now."""
        now = self._clock.wall()
        sql = "SELECT key, token, expires_at FROM claims WHERE expires_at > ?"
        with self._errors("list the claims"):
            rows = self._conn().execute(sql, (now,)).fetchall()
        return {key: Claim(owner(token), expires - now) for key, token, expires in rows}

    # -- geocode cache --------------------------------------------------------------------

    def _fetch(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """The unexpired payloads of ``keys`` in ``scope``, joined through a temp table."""
        import polars as pl

        from etl4all.state.payloads import PAYLOADS_SCHEMA

        with self._errors(f"read {keys.height} cache keys"), self._transaction("DEFERRED") as conn:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS cache_keys (lat_key INTEGER, lon_key INTEGER)"
            )
            conn.execute("DELETE FROM temp.cache_keys")
            conn.executemany("INSERT INTO temp.cache_keys VALUES (?, ?)", keys.iter_rows())
            found = conn.execute(_GET, (scope, self._clock.wall())).fetchall()
            conn.execute("DELETE FROM temp.cache_keys")
        return pl.DataFrame(found, schema=PAYLOADS_SCHEMA, orient="row")

    def _store(self, scope: str, payloads: pl.DataFrame, ttl: float) -> None:
        """Upsert ``payloads`` in ``scope``, purging expired rows first."""
        import polars as pl

        now = self._clock.wall()
        values = payloads.with_columns(
            pl.lit(scope).alias("scope"), pl.lit(now + ttl).alias("expires_at")
        ).select("scope", "lat_key", "lon_key", "payload", "expires_at")
        with self._errors(f"cache {values.height} rows"), self._transaction() as conn:
            conn.execute("DELETE FROM geocode_cache WHERE expires_at <= ?", (now,))
            conn.executemany(_PUT, values.iter_rows())

    def cache_size(self) -> int:
        """Number of unexpired cached results (all scopes)."""
        sql = "SELECT count(*) FROM geocode_cache WHERE expires_at > ?"
        with self._errors("count the cache"):
            (count,) = self._conn().execute(sql, (self._clock.wall(),)).fetchone()
        return int(count)

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections of every thread."""
        for conn in self._connections.pop_all():
            conn.close()

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        return self._connections.get()

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode."""
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextlib.contextmanager
    def _transaction(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """A transaction on this thread's connection; IMMEDIATE takes the write lock at once."""
        conn = self._conn()
        conn.execute(f"BEGIN {mode}")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate sqlite3 errors into :class:`StoreError`; a file that is not a SQLite
        database, is damaged, or cannot be opened or written is a :class:`StoreConfigError`
        (no retry fixes it)."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
            if code in _DAMAGED:
                raise StoreConfigError(
                    f"SQLite state {self._safe_url} failed to {action}: {exc}; {self._fix()}"
                ) from exc
            if code in _REFUSED or "unable to open" in str(exc):
                raise StoreConfigError(
                    f"SQLite state {self._safe_url} failed to {action}: {exc}; {self._writable()}"
                ) from exc
            raise StoreError(
                f"SQLite state {self._safe_url} failed to {action}: {exc}; "
                "another process may hold a long write lock; retry later"
            ) from exc

    def _writable(self) -> str:
        """What to do about a state file this user cannot open or write."""
        if os.path.isdir(self.path):
            return f"{self.path} is a folder: give --state the path of a file, sqlite:///dir/x.db"
        return (
            f"make {self.path} and its folder writable for this user (SQLite writes -wal and "
            "-shm files beside it), or give --state another sqlite:///path"
        )

    def _fix(self) -> str:
        """What to do about a state file that cannot be used as it is."""
        return (
            f"{self.path} is not a usable SQLite state file (damaged, or another kind of file): "
            "move it aside and run again (a new one is made: files are read again, rows already "
            "loaded are not duplicated, answers kept in the warehouse are not paid twice), "
            "or give --state another sqlite:///path"
        )
