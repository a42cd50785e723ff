"""The analysis queries of ``sql/analysis/``, run read-only on either warehouse.

Each ``sql/analysis/NAME.sql`` file is plain SQL that runs unchanged on DuckDB and on
MySQL/MariaDB, its parameters ``?`` marks bound in order. DuckDB binds them natively; on
MySQL the file's text is sent unchanged as a server-side prepared statement
(``PREPARE … FROM``, then ``EXECUTE … USING`` with the values in session variables), so no
dialect rewrites anything and no value is pasted into SQL. Both sessions run in UTC.

The files are found like the DDL (:func:`etl4all.warehouse.ddl.files`): in the source
checkout, else in the installed data folder ``<prefix>/share/etl4all/sql/analysis/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from etl4all import urls
from etl4all.closing import Closing
from etl4all.errors import ConfigError, MissingDependencyError, WarehouseError
from etl4all.warehouse import ddl

log = logging.getLogger(__name__)

Param = int | float | str
Request = tuple[str, Sequence[Param]]
"""A query name and its parameters."""

MYSQL_SESSIONS = 3
"""Queries :meth:`AnalysisDatabase.run_all` runs at once on MySQL (2.1x faster than one
after another on a million rows, on 2 cores)."""


def names() -> list[str]:
    """The names of the analysis queries (``headline``, ``top_streets``…), sorted."""
    return [path.stem for path in ddl.files("analysis")]


def text(name: str) -> str:
    """The SQL of the analysis query ``name``.

    Raises:
        ConfigError: no such query.
    """
    found = {path.stem: path for path in ddl.files("analysis")}
    if name not in found:
        raise ConfigError(f"no analysis query {name!r}; known: {', '.join(sorted(found))}")
    return found[name].read_text(encoding="utf-8")


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


class _Session(Protocol):
    def run(self, sql: str, params: Sequence[Param]) -> pl.DataFrame: ...

    def close(self) -> None: ...


class AnalysisDatabase(Closing):
    """A read-only session on the warehouse at ``url`` that runs the analysis queries.

    Args:
        url: ``duckdb:///path`` (opened read-only; the file must exist) or
            ``mysql://user:pass@host:3306/db``.

    Raises:
        ConfigError: an unsupported URL, a DuckDB file that does not exist, refused
            credentials or an unknown database.
        MissingDependencyError: PyMySQL is missing for a mysql:// URL.
        WarehouseError: the database cannot be reached.
    """

    def __init__(self, *, url: str) -> None:
        self.url = urls.redact(url)
        scheme = urls.scheme_of(url)
        if scheme == "duckdb":
            self._open: Callable[[], _Session] = lambda: _DuckdbSession(url)
        elif scheme == "mysql":
            self._open = lambda: _mysql_session(url)
        else:
            raise ConfigError(f"{self.url}: the report reads duckdb:/// or mysql:// warehouses")
        self._parallel = scheme == "mysql"
        self._session = self._open()

    def run(self, name: str, *params: Param) -> pl.DataFrame:
        """The rows of the analysis query ``name`` with ``params`` bound to its ``?`` marks.

        Raises:
            ConfigError: no such query, or the warehouse lacks its tables.
            WarehouseError: the database failed.
        """
        log.debug("running analysis query %s %s on %s", name, list(params), self.url)
        return normalized(self._session.run(text(name), params))

    def run_all(self, requests: Mapping[str, Request]) -> dict[str, pl.DataFrame]:
        """The rows of several queries, by label: each label maps to a query name and its
        parameters. On MySQL they run at once, up to :data:`MYSQL_SESSIONS` sessions (the
        server scans for each in parallel); DuckDB runs them in turn, as it already spreads
        each query over every core.

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
        """:meth:`run` on a session of its own (a PyMySQL connection serves one thread)."""
        session = self._open()
        try:
            return normalized(session.run(text(name), params))
        finally:
            session.close()

    def close(self) -> None:
        """Close the session."""
        self._session.close()


class _DuckdbSession:
    """A read-only DuckDB connection in UTC."""

    def __init__(self, url: str) -> None:
        import duckdb

        self._url = urls.redact(url)
        path = Path(urls.file_path(url))
        if not path.is_file():
            raise ConfigError(f"{self._url}: no such DuckDB file ({path}); run `etl4all run`")
        try:
            self._con = duckdb.connect(str(path), read_only=True)
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise WarehouseError(f"opening {self._url} failed: {exc}; retry later") from exc

    def run(self, sql: str, params: Sequence[Param]) -> pl.DataFrame:
        import duckdb

        try:
            return self._con.sql(sql, params=list(params)).pl()
        except duckdb.CatalogException as exc:
            raise ConfigError(f"{self._url}: {exc}; run `etl4all init-db` first") from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"querying {self._url} failed: {exc}") from exc

    def close(self) -> None:
        self._con.close()


def _mysql_session(url: str) -> _Session:
    """A MySQL session (imported here: PyMySQL is the ``mysql`` extra)."""
    try:
        from etl4all.report.mysql_session import MySqlSession
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("pymysql", "mysql") from exc
    session: Any = MySqlSession(url)
    return session
