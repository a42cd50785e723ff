"""MySQL / MariaDB warehouse, loaded with ``LOAD DATA LOCAL INFILE``.

URL: ``mysql://user:password@host:3306/database`` (password URL-escaped). Query options:
``connect_timeout`` (default 10 s), ``read_timeout`` and ``write_timeout`` (default 300 s: each
wait during a statement), the TLS options of :mod:`etl4all.tls`. Driver: PyMySQL (``pip install
'etl4all[mysql]'``); queries read through :mod:`.mysql_read`, whole tables through connectorx
(PyMySQL over TLS). The server must allow ``LOAD DATA LOCAL`` (checked when built). A load
(:mod:`.mysql_load`) and a prune (:mod:`.mysql_prune`) lock the file's row first
(:mod:`.mysql_files`); connecting and errors: :mod:`.mysql_connection`. More: docs/backends.md
(Warehouses and the lookup)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any, ClassVar

import polars as pl
import pymysql
import pymysql.cursors

from etl4all.errors import WarehouseError
from etl4all.warehouse import ddl, mysql_files, mysql_load, mysql_prune, mysql_read, spool
from etl4all.warehouse.mysql_connection import Dsn, connect, errors
from etl4all.warehouse.server import ServerWarehouse

_DUPLICATE_COLUMN = 1060
"""MySQL's ER_DUP_FIELDNAME: the column an ``ADD COLUMN`` adds is already there."""


class MySqlWarehouse(ServerWarehouse):
    """The address table in MySQL or MariaDB; a context manager.

    Args:
        url: ``mysql://user:password@host:port/database[?options]``.
        spool_dir: the folder of the ``LOAD DATA`` files (:func:`spool.root`); None: the
            system's temporary folder.

    Raises:
        ConfigError: a bad URL, bad credentials, ``local_infile`` off on the server, or a
            spool folder (:mod:`etl4all.warehouse.spool`) that this user cannot write to or
            that is not this user's (checked first, before connecting).
        WarehouseError: the server cannot be reached.
    """

    _file_rows: ClassVar[ModuleType] = mysql_files
    _prunes: ClassVar[ModuleType] = mysql_prune
    _loads: ClassVar[ModuleType] = mysql_load
    _reads: ClassVar[ModuleType] = mysql_read

    def __init__(self, *, url: str, spool_dir: str | None = None) -> None:
        self._dsn = Dsn.parse(url)
        self._url = self._dsn.url
        self._spool = spool.root(spool_dir)
        self._conn: pymysql.Connection | None = None
        self._connection()
        spool.sweep(self._spool)  # the TSV files of loaders that died mid-load hold address data

    def _connection(self) -> pymysql.Connection:
        """The open connection; a new one when needed."""
        if self._conn is None or not self._conn.open:
            self._conn = connect(self._dsn)
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[pymysql.cursors.Cursor]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        try:
            with errors(what, self._dsn):
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
        database = self._dsn.database
        with self._transaction("creating the tables") as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{database}`"
                " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cur.execute(f"USE `{database}`")
            for statement in ddl.statements("mysql"):
                try:
                    cur.execute(statement)
                except pymysql.err.OperationalError as exc:
                    # MySQL has no ADD COLUMN IF NOT EXISTS: an upgrade already made is skipped
                    if not (ddl.adds_column(statement) and exc.args[0] == _DUPLICATE_COLUMN):
                        raise
            cur.execute(
                "SELECT (SELECT COUNT(*) FROM address), (SELECT COUNT(*) FROM address_source)"
            )
            if ddl.needs_upgrade(*cur.fetchone()):
                for statement in ddl.statements("mysql", ddl.UPGRADE):
                    cur.execute(statement)

    def missing_schema(self) -> list[str]:
        """What ``sql/mysql/`` makes that the database lacks (:func:`ddl.missing`): tables
        (all of them without a database) and columns added later (``reject.detail``)."""
        with self._transaction("looking for the tables") as cur:
            cur.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = %s",
                (self._dsn.database,),
            )
            present = {(str(table), str(column)) for table, column in cur.fetchall()}
        return ddl.missing("mysql", present)

    def _merge(
        self, new: pl.DataFrame, known: pl.DataFrame, sources: list[str], version: int | None
    ) -> tuple[int, int] | None:
        """:func:`mysql_load.merge` in one transaction, the file's row locked first."""
        files = self._files(sources)
        with self._transaction(f"loading {new.height + known.height} rows") as cur:
            moved = None
            if version is not None:
                file_id, current = files[sources[0]]
                row = self._lock(cur, file_id, version, current=current)
                if row.stale:
                    return None
                moved = sources[0] if row.replaced else None
            held = (
                mysql_load.members(new, files, version),
                mysql_load.members(known, files, version),
            )
            return mysql_load.merge(
                cur, new, known, held, url=self._url, moved=moved, spool_root=self._spool
            )

    def _staging(self) -> dict[str, Any]:
        return {"url": self._url, "spool_root": self._spool}

    def read(self) -> pl.DataFrame:
        """The whole address table ordered by ``id``, through connectorx (DECIMAL as Float64;
        PyMySQL over TLS)."""
        return mysql_read.read_table(self._dsn)

    @classmethod
    def read_url(cls, url: str) -> pl.DataFrame:
        """The address table at ``url`` through connectorx; no PyMySQL connection is opened
        (except over TLS, which connectorx cannot verify against a CA file).

        Raises:
            ConfigError: a bad URL, or no such database or table.
            MissingDependencyError: connectorx is not installed.
            WarehouseError: the database could not be read.
        """
        return mysql_read.read_table(Dsn.parse(url))

    @classmethod
    def reader(cls, url: str) -> mysql_read.MySqlReader:
        """A read-only session on the database at ``url`` (:class:`mysql_read.MySqlReader`)."""
        return mysql_read.MySqlReader(url)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection."""
        self._drop()
