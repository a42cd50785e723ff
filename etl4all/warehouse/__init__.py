"""Warehouses, chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.warehouse.base import Warehouse

SCHEMES = {
    "duckdb": ("etl4all.warehouse.duckdb:DuckdbWarehouse", "core"),
    "mysql": ("etl4all.warehouse.mysql:MySqlWarehouse", "mysql"),
}


def from_url(url: str) -> Warehouse:
    """Build the warehouse of ``url``."""
    cls = urls.load_class("warehouse", urls.scheme_of(url), SCHEMES)
    return cls(url=url)
