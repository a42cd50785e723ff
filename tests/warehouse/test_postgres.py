"""PostgresWarehouse: the warehouse contracts on a fresh PostgreSQL database, plus what is
PostgreSQL's own: COPY escaping, init-db making the database, the reader, PostGIS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contracts.warehouse import WarehouseAdminContract, WarehouseContract

from etl4all.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.postgres


@pytest.fixture
def warehouse(postgres_url: str) -> Iterator[PostgresWarehouse]:
    with PostgresWarehouse(url=postgres_url) as warehouse:
        warehouse.init()
        yield warehouse


class TestPostgresWarehouse(WarehouseContract, WarehouseAdminContract):
    @pytest.fixture
    def warehouse(self, warehouse: PostgresWarehouse) -> PostgresWarehouse:
        return warehouse
