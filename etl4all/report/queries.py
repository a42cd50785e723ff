"""The analysis queries of ``sql/analysis/``, run read-only on either warehouse.

Each ``sql/analysis/NAME.sql`` file is plain SQL that runs unchanged on DuckDB, on
MySQL/MariaDB and on PostgreSQL, its parameters ``?`` marks bound in order, on the warehouse
backend's own read-only session (``Warehouse.reader``: DuckDB binds them natively, MySQL
prepares the text on the server, PostgreSQL numbers them ``$1, $2…``), so no dialect rewrites
the SQL and no value is pasted into it. ``sql/analysis/postgis/`` holds the queries that need
PostGIS (``postgis/nearest_points``), which only a PostgreSQL warehouse with it can run.

The files are found like the DDL (:func:`etl4all.warehouse.ddl.files`): in the source
checkout, else in the installed data folder ``<prefix>/share/etl4all/sql/analysis/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import polars as pl

from etl4all import urls, warehouse
from etl4all.closing import Closing
from etl4all.errors import ConfigError
from etl4all.warehouse import ddl

if TYPE_CHECKING:
    from etl4all.warehouse.base import Reader, WarehouseAdmin

log = logging.getLogger(__name__)

Param = int | float | str
Request = tuple[str, Sequence[Param]]
"""A query name and its parameters."""

POSTGIS = "postgis"
"""The subfolder of ``sql/analysis/`` whose queries need PostgreSQL with PostGIS."""
POSTGRES_SCHEMES = ("postgresql", "postgres")

MYSQL_SESSIONS = 3
"""Queries :meth:`AnalysisDatabase.run_all` runs at once on MySQL and PostgreSQL (on MySQL,
2.1x faster than one after another on a million rows, on 2 cores)."""


def names() -> list[str]:
    """The names of the analysis queries (``headline``, ``top_streets``…), sorted."""
    return [path.stem for path in ddl.files("analysis")]


def text(name: str) -> str:
    """The SQL of the analysis query ``name``; ``postgis/NAME`` for one of the queries that
    need PostgreSQL with PostGIS (``sql/analysis/postgis/``, which the report and
    :func:`names` leave out).

    Raises:
        ConfigError: no such query.
    """
    folder, _, stem = name.rpartition("/")
    found = {path.stem: path for path in ddl.files("analysis", folder)}
    if stem not in found:
        raise ConfigError(f"no analysis query {name!r}; known: {', '.join(sorted(found))}")
    return found[stem].read_text(encoding="utf-8")


def normalized(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the same types whichever database answered: whole numbers as Int64
    (DuckDB's HUGEINT sums, MySQL's DECIMAL sums), other decimals as Float64, times as UTC."""
    casts = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Decimal):
            casts.append(pl.col(name).cast(pl.Int64 if dtype.scale == 0 else pl.Float64))
        elif dtype.is_integer():
            casts.append(pl.col(name).cast(pl.Int64))
        elif dtype == pl.Float32:
            casts.append(pl.col(name).cast(pl.Float64))
        elif isinstance(dtype, pl.Datetime):
            casts.append(pl.col(name).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    return frame.with_columns(casts)


class AnalysisDatabase(Closing):
    """A read-only session on the warehouse at ``url`` that runs the analysis queries.

    Args:
        url: ``duckdb:///path`` (opened read-only; the file must exist) or
            ``mysql://user:pass@host:3306/db`` or ``postgresql://user@host:5432/db``.

    Raises:
        ConfigError: an unsupported URL, a DuckDB file that does not exist, refused
            credentials or an unknown database.
        MissingDependencyError: PyMySQL (psycopg) is missing for a mysql:// (postgresql://)
            URL.
        WarehouseError: the database cannot be reached.
    """

    def __init__(self, *, url: str) -> None:
        self.url = urls.redact(url)
        scheme = urls.scheme_of(url)
        backend: type[WarehouseAdmin] = urls.load_class("warehouse", scheme, warehouse.SCHEMES)
        self._backend = backend
        self._url = url
        self._scheme = scheme
        self._parallel = scheme != "duckdb"  # a server scans for each session in parallel
        self._session = self._open()

    def _open(self) -> Reader:
        """A new read-only session of the warehouse backend."""
        return self._backend.reader(self._url)

    def run(self, name: str, *params: Param) -> pl.DataFrame:
        """The rows of the analysis query ``name`` with ``params`` bound to its ``?`` marks.

        Raises:
            ConfigError: no such query, a ``postgis/`` query on another warehouse than
                PostgreSQL, or the warehouse lacks its tables (or PostGIS's column).
            WarehouseError: the database failed.
        """
        if name.startswith(f"{POSTGIS}/") and self._scheme not in POSTGRES_SCHEMES:
            raise ConfigError(
                f"{name} needs a PostgreSQL warehouse with PostGIS, not {self.url}; the other "
                "analysis queries run on every warehouse"
            )
        log.debug("running analysis query %s %s on %s", name, list(params), self.url)
        return normalized(self._session.run(text(name), params))

    def run_all(self, requests: Mapping[str, Request]) -> dict[str, pl.DataFrame]:
        """The rows of several queries, by label: each label maps to a query name and its
        parameters. On MySQL and PostgreSQL they run at once, up to :data:`MYSQL_SESSIONS`
        sessions (the server scans for each in parallel); DuckDB runs them in turn, as it
        already spreads each query over every core.

        Raises:
            ConfigError: no such query, or the warehouse lacks its tables.
            WarehouseError: the database failed.
        """
        if not self._parallel or len(requests) < 2:
            return {label: self.run(name, *params) for label, (name, params) in requests.items()}
        with ThreadPoolExecutor(min(MYSQL_SESSIONS, len(requests))) as pool:
            futures = {label: pool.submit(self._run_apart, *r) for label, r in requests.items()}
            return {label: future.result() for label, future in futures.items()}

    def _run_apart(self, name: str, params: Sequence[Param]) -> pl.DataFrame:
        """:meth:`run` on a session of its own (a MySQL connection serves one thread)."""
        session = self._open()
        try:
            return normalized(session.run(text(name), params))
        finally:
            session.close()

    def close(self) -> None:
        """Close the session."""
        self._session.close()
