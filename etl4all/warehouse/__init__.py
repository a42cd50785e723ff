"""Warehouses, chosen by URL scheme; each backend owns its one way to SQL, reads included.

No SQLAlchemy: its URL parses database URLs only, and its engine speeds neither LOAD DATA
nor Arrow reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.warehouse.base import WarehouseBackend

SCHEMES = {
    "duckdb": ("etl4all.warehouse.duckdb:DuckdbWarehouse", "core"),
    "mysql": ("etl4all.warehouse.mysql:MySqlWarehouse", "mysql"),
    "postgresql": ("etl4all.warehouse.postgres:PostgresWarehouse", "postgres"),
    "postgres": ("etl4all.warehouse.postgres:PostgresWarehouse", "postgres"),
}


def from_url(url: str, **options: Any) -> WarehouseBackend:
    """The warehouse of ``url`` (options are URL query options); see :func:`etl4all.urls.build`."""
    return urls.build("warehouse", url, SCHEMES, **options)
