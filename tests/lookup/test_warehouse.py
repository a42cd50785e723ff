"""WarehouseLookup: the Lookup contract over DuckDB, and over MySQL (marked ``mysql``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contracts.lookup import Commit, LookupContract
from contracts.warehouse import NONE

from etl4all import lookup as lookup_role
from etl4all.lookup.warehouse import WarehouseLookup
from etl4all.warehouse.base import Warehouse
from etl4all.warehouse.duckdb import DuckdbWarehouse
from etl4all.warehouse.mysql import MySqlWarehouse


class WarehouseLookupContract(LookupContract):
    """The contract for a lookup on the ``warehouse`` fixture, built by the factory."""

    @pytest.fixture
    def lookup(self, warehouse: Warehouse) -> Iterator[WarehouseLookup]:
        with lookup_role.from_url(None, warehouse=warehouse) as lookup:
            assert isinstance(lookup, WarehouseLookup)
            yield lookup

    @pytest.fixture
    def commit(self, warehouse: Warehouse) -> Commit:
        return lambda rows: warehouse.load(rows, NONE)


class TestOnDuckdb(WarehouseLookupContract):
    @pytest.fixture
    def warehouse(self, tmp_path: Path) -> Iterator[Warehouse]:
        with DuckdbWarehouse(url=f"duckdb:///{tmp_path}/etl4all.duckdb") as warehouse:
            yield warehouse


@pytest.mark.mysql
class TestOnMySql(WarehouseLookupContract):
    @pytest.fixture
    def warehouse(self, mysql_url: str) -> Iterator[Warehouse]:
        with MySqlWarehouse(url=mysql_url) as warehouse:
            warehouse.init()
            yield warehouse
