"""Read the whole address table of a warehouse into a Polars frame, for analysis.

``read_warehouse("mysql://user:pass@host:3306/etl4all")`` uses connectorx (the ``mysql``
extra), which streams straight into Arrow; ``read_warehouse("duckdb:///etl4all.duckdb")``
uses DuckDB's own reader and opens the file read-only.
"""

from __future__ import annotations

import importlib
import logging

import polars as pl

from etl4all import urls
from etl4all.errors import ConfigError, MissingDependencyError, WarehouseError
from etl4all.warehouse import common

log = logging.getLogger(__name__)

_QUERY = "SELECT * FROM address ORDER BY id"


def read_warehouse(url: str) -> pl.DataFrame:
    """The address table of the warehouse at ``url``, ordered by ``id``.

    Every backend gives the same shape: ``latitude``/``longitude`` as Float64 and the
    timestamps as ``Datetime("us", "UTC")``. For MySQL the coordinates come through
    connectorx, which reads DECIMAL as float64: compare them rounded to 8 decimals or via
    :func:`etl4all.frames.coordinate_key`, never with ``==`` on the raw floats.

    Raises:
        ConfigError: an unsupported URL, or no such table.
        MissingDependencyError: connectorx is not installed (``pip install 'etl4all[mysql]'``).
        WarehouseError: the database could not be read.
    """
    scheme = urls.scheme_of(url)
    log.debug("reading the address table of %s", urls.redact(url))
    if scheme == "duckdb":
        return common.table_frame(_read_duckdb(url))
    if scheme == "mysql":
        return common.table_frame(_read_mysql(url))
    raise ConfigError(f"cannot read {urls.redact(url)}: use a duckdb:/// or mysql:// URL")


def _read_duckdb(url: str) -> pl.DataFrame:
    import duckdb

    path = urls.file_path(url)
    try:
        with duckdb.connect(path, read_only=True) as con:
            return con.sql(_QUERY).pl()
    except duckdb.CatalogException as exc:
        raise ConfigError(f"{url} has no address table; run `etl4all init-db`") from exc
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        raise WarehouseError(f"reading {url} failed: {exc}") from exc


def _read_mysql(url: str) -> pl.DataFrame:
    try:
        cx = importlib.import_module("connectorx")
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("connectorx", "mysql") from exc
    uri = urls.split(url)._replace(query="").geturl()
    try:
        frame = cx.read_sql(uri, _QUERY, return_type="polars", protocol="binary")
    except RuntimeError as exc:  # connectorx raises RuntimeError for every failure
        message = urls.redact(str(exc))
        if "doesn't exist" in message or "Unknown database" in message:
            raise ConfigError(f"{urls.redact(url)}: {message}; run `etl4all init-db`") from None
        raise WarehouseError(f"reading {urls.redact(url)} failed: {message}") from None
    assert isinstance(frame, pl.DataFrame)
    return frame
