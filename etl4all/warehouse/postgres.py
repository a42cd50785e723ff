"""PostgreSQL warehouse, loaded with ``COPY`` into a staging table and index-driven merges.

URL: ``postgresql://user:password@host:5432/database`` (or ``postgres://``; password
URL-escaped; no password: libpq's ``~/.pgpass`` or trust). Query options go to libpq as they
are: ``connect_timeout`` (whole seconds, default 10), ``sslmode``, ``sslrootcert``, ``sslcert``,
``sslkey`` (without ``sslmode``, libpq's ``prefer``: TLS when the server offers it, its
certificate unchecked; in production give ``sslmode=verify-full`` and ``sslrootcert``); and
etl4all's ``statement_timeout`` and ``lock_timeout`` (seconds, default 300 and 50).
Driver: psycopg 3 (``pip install 'etl4all[postgres]'``); the whole-table read
through connectorx (the same extra), or psycopg when the URL names a certificate file or a
``verify-*`` mode, which connectorx cannot take.

``init-db`` creates the database when it is missing (the user needs ``CREATEDB``), then the
tables from ``sql/postgres/``. When ``CREATE EXTENSION IF NOT EXISTS postgis`` succeeds (the
server has PostGIS, e.g. Debian's ``postgresql-15-postgis-3``, and the user may create it),
``sql/postgres/postgis/`` adds to ``address`` a generated ``geom geometry(Point, 4326)``
column with a GiST index, which the queries of ``sql/analysis/postgis/`` use; without PostGIS
everything else works the same.

A load is one transaction: the file's row locked (:mod:`etl4all.warehouse.postgres_files`),
then ``COPY`` and the merges of :mod:`etl4all.warehouse.postgres_load`; a prune is
:mod:`etl4all.warehouse.postgres_prune`. Any error rolls the whole transaction back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import ClassVar

import polars as pl
import psycopg
from psycopg import sql

from etl4all.errors import ConfigError, WarehouseError
from etl4all.warehouse import ddl, postgres_files, postgres_load, postgres_prune, postgres_read
from etl4all.warehouse.postgres_connection import Dsn, connect, errors, missing_database
from etl4all.warehouse.server import ServerWarehouse

log = logging.getLogger(__name__)

DIALECT = "postgres"
POSTGIS = "postgis"
"""The subfolder of ``sql/postgres/`` run when the PostGIS extension is there."""
_MAINTENANCE_DB = "postgres"
_NO_POSTGIS = (
    psycopg.errors.UndefinedFile,  # the server has no PostGIS files (PostgreSQL 15)
    psycopg.errors.FeatureNotSupported,  # the same, as PostgreSQL 16 and later say it
    psycopg.errors.InsufficientPrivilege,  # no right to create it
)


class PostgresWarehouse(ServerWarehouse):
    """The address table in PostgreSQL; a context manager.

    Args:
        url: ``postgresql://user:password@host:port/database[?options]``.

    Raises:
        ConfigError: a bad URL or refused credentials (a missing database is made by
            :meth:`init`).
        WarehouseError: the server cannot be reached.
    """

    _file_rows: ClassVar[ModuleType] = postgres_files
    _prunes: ClassVar[ModuleType] = postgres_prune
    _loads: ClassVar[ModuleType] = postgres_load
    _reads: ClassVar[ModuleType] = postgres_read

    def __init__(self, *, url: str) -> None:
        self._dsn = Dsn.parse(url)
        self._conn: psycopg.Connection | None = None
        self._exists = True
        try:
            self._connection()
        except ConfigError as exc:
            if not missing_database(exc):
                raise
            self._exists = False  # init() creates it; until then every use says so

    def _connection(self) -> psycopg.Connection:
        """The open connection; a new one when needed."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn)
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg.Cursor]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        try:
            with errors(what, self._dsn):
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
        except WarehouseError:
            self._drop()  # the session state is unknown: start afresh next time
            raise

    def init(self) -> None:
        """Create the database when missing, the tables from ``sql/postgres/`` (idempotent),
        and the PostGIS geometry when the extension can be had."""
        if not self._exists:
            self._create_database()
        with self._transaction("creating the tables") as cur:
            for statement in ddl.statements(DIALECT):
                cur.execute(statement)
        if self._postgis():
            with self._transaction("adding the PostGIS geometry") as cur:
                for statement in ddl.statements(DIALECT, POSTGIS):
                    cur.execute(statement)

    def _create_database(self) -> None:
        """``CREATE DATABASE`` the URL's database (UTF-8), from the maintenance database."""
        admin = self._dsn.on(_MAINTENANCE_DB)
        create = sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0")
        what = f"creating the database {self._dsn.database}"
        with errors(what, admin), connect(admin, autocommit=True) as conn:
            conn.execute(create.format(sql.Identifier(self._dsn.database)))
        self._exists = True

    def _postgis(self) -> bool:
        """Whether the PostGIS extension is there, created now when the server has it."""
        with errors("creating the PostGIS extension", self._dsn):
            conn = self._connection()
            try:
                with conn.transaction():
                    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except _NO_POSTGIS as exc:
                log.info("no PostGIS geometry on %s: %s", self._dsn.url, exc)
                return False
        log.info("PostGIS: address.geom (a point with a GiST index) on %s", self._dsn.url)
        return True

    def missing_schema(self) -> list[str]:
        """What ``sql/postgres/`` makes that the database lacks (:func:`ddl.missing`): tables
        (all of them without a database)."""
        if not self._exists:
            return ddl.missing(DIALECT, set())
        with self._transaction("looking for the tables") as cur:
            cur.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            )
            present = {(str(table), str(column)) for table, column in cur.fetchall()}
        return ddl.missing(DIALECT, present)

    def _merge(
        self, new: pl.DataFrame, known: pl.DataFrame, sources: list[str], version: int | None
    ) -> tuple[int, int] | None:
        """:func:`postgres_load.merge` of both frames in one transaction, the file's row
        locked first."""
        files = self._files(sources)
        with self._transaction(f"loading {new.height + known.height} rows") as cur:
            moved = None
            if version is not None:
                file_id, current = files[sources[0]]
                row = self._lock(cur, file_id, version, current=current)
                if row.stale:
                    return None
                moved = (file_id, sources[0]) if row.replaced else None
            rows = pl.concat([new, known])
            return postgres_load.merge(cur, rows, version=version, moved=moved)

    def select(
        self, table: str, where: Mapping[str, Sequence[str]], *, after_id: int, limit: int
    ) -> pl.DataFrame:
        """A page of chosen rows of ``table`` (see ``WarehouseAdmin.select``), in the shape
        of :meth:`read` (the PostGIS geometry stays in the database)."""
        found = super().select(table, where, after_id=after_id, limit=limit)
        return found.drop(postgres_read.GEOMETRY, strict=False)

    def read(self) -> pl.DataFrame:
        """The whole address table ordered by ``id``, through connectorx (psycopg over
        verified TLS: :func:`postgres_read.read_table`)."""
        return postgres_read.read_table(self._dsn)

    @classmethod
    def read_url(cls, url: str) -> pl.DataFrame:
        """The address table at ``url`` through connectorx (psycopg over verified TLS).

        Raises:
            ConfigError: a bad URL, or no such database or table.
            MissingDependencyError: connectorx is not installed.
            WarehouseError: the database could not be read.
        """
        return postgres_read.read_table(Dsn.parse(url))

    @classmethod
    def reader(cls, url: str) -> postgres_read.PostgresReader:
        """A read-only session on the database at ``url``
        (:class:`postgres_read.PostgresReader`)."""
        return postgres_read.PostgresReader(url)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection."""
        self._drop()
