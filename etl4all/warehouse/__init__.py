"""Warehouses, chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.warehouse.base import Warehouse

SCHEMES = {
    "duckdb": ("etl4all.warehouse.duckdb:DuckdbWarehouse", "core"),
    "mysql": ("etl4all.warehouse.mysql:MySqlWarehouse", "mysql"),
}


def from_url(url: str, **options: Any) -> Warehouse:
    """Build the warehouse of ``url`` with the backend's keyword ``options``.

    Raises:
        UnknownSchemeError: no backend for the URL's scheme.
        MissingDependencyError: the backend's driver is not installed.
        ConfigError: a bad URL or option.
    """
    cls = urls.load_class("warehouse", urls.scheme_of(url), SCHEMES)
    return cls(url=url, **options)
