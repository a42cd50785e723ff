"""DuckdbWarehouse: the Warehouse contract on a temporary file, plus DuckDB specifics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from contracts.warehouse import NONE, WarehouseAdminContract, WarehouseContract, addresses

from etl4all import warehouse as warehouse_role
from etl4all.errors import ConfigError, DataError, UnknownSchemeError, WarehouseError
from etl4all.warehouse.duckdb import DuckdbWarehouse
from etl4all.warehouse.read import read_warehouse


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path}/deep/er/etl4all.duckdb"


class TestDuckdbWarehouse(WarehouseContract, WarehouseAdminContract):
    @pytest.fixture
    def warehouse(self, url: str) -> Iterator[DuckdbWarehouse]:
        with DuckdbWarehouse(url=url) as warehouse:
            yield warehouse


def test_from_url_builds_it_and_creates_the_folder(url: str, tmp_path: Path) -> None:
    with warehouse_role.from_url(url) as warehouse:
        assert isinstance(warehouse, DuckdbWarehouse)
        assert warehouse.count() == 0
    assert (tmp_path / "deep" / "er" / "etl4all.duckdb").exists()


def test_init_is_idempotent_and_data_survives_reopening(url: str) -> None:
    with DuckdbWarehouse(url=url) as warehouse:
        warehouse.load(addresses(3), NONE)
        warehouse.init()
        warehouse.init()
    with DuckdbWarehouse(url=url) as warehouse:
        assert warehouse.count() == 3
        warehouse.load(NONE, addresses(4))
        assert warehouse.read()["id"].to_list() == [1, 2, 3, 4]


@pytest.mark.parametrize("column", ["detail", "reasons"])
def test_opening_upgrades_a_reject_table_made_before_a_column(
    url: str, tmp_path: Path, column: str
) -> None:
    with DuckdbWarehouse(url=url):
        pass
    with duckdb.connect(str(tmp_path / "deep/er/etl4all.duckdb")) as con:
        con.execute(f"ALTER TABLE reject DROP COLUMN {column}")
    with DuckdbWarehouse(url=url) as wh:
        assert wh.missing_schema() == []
        assert column in wh.select("reject", {}, after_id=0, limit=1).columns


def test_opening_gives_rows_loaded_before_file_versions_to_their_file(
    url: str, tmp_path: Path
) -> None:
    with DuckdbWarehouse(url=url) as wh:
        wh.load(addresses(3), NONE)
    with duckdb.connect(str(tmp_path / "deep/er/etl4all.duckdb")) as con:
        con.execute("DELETE FROM address_source")  # as a release before file versions left it
        con.execute("DELETE FROM source_file")
    with DuckdbWarehouse(url=url) as wh:
        assert wh.prune("data_points_1.txt", 1, pl.Series([], dtype=pl.String)) == 0  # marked
        assert wh.finalize("data_points_1.txt", 1) == 3
        assert wh.count() == 0


def test_read_warehouse(url: str) -> None:
    with DuckdbWarehouse(url=url) as warehouse:
        warehouse.load(addresses(2), NONE)
        expected = warehouse.read()
    frame = read_warehouse(url)
    assert frame.equals(expected)
    assert frame.schema["latitude"] == pl.Float64


def test_read_warehouse_without_the_table_says_init_db(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    with pytest.raises(ConfigError, match="init-db"):
        read_warehouse(f"duckdb:///{tmp_path}/empty.duckdb")


def test_read_warehouse_of_an_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError, match="duckdb"):
        read_warehouse("oracle://h/db")


def test_bad_value_is_a_data_error_and_nothing_is_committed(url: str) -> None:
    with DuckdbWarehouse(url=url) as warehouse:
        good = addresses(2)
        bad = addresses(1, offset=5).with_columns(latitude=pl.lit(123.0))  # > DECIMAL(10,8)
        with pytest.raises(DataError):
            warehouse.load(good, bad)
        assert warehouse.count() == 0


def test_bad_frame_is_a_data_error(url: str) -> None:
    with DuckdbWarehouse(url=url) as warehouse, pytest.raises(DataError):
        warehouse.load(addresses(1).drop("street"), NONE)


def test_bad_keys_are_a_data_error(url: str) -> None:
    with DuckdbWarehouse(url=url) as warehouse, pytest.raises(DataError, match="canonical"):
        warehouse.existing(pl.Series(["-30.1,-51.2"]))


@pytest.mark.parametrize("bad", ["duckdb://host/x.duckdb", "duckdb://", "sqlite:///x.db"])
def test_bad_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        DuckdbWarehouse(url=bad)


def test_closed_warehouse_refuses_work(url: str) -> None:
    warehouse = DuckdbWarehouse(url=url)
    warehouse.close()
    warehouse.close()
    with pytest.raises(ConfigError, match="closed"):
        warehouse.count()


# -- issue 17, item 6: a file or folder that cannot serve is a configuration fault ----------


def test_a_file_that_is_not_a_duckdb_database_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ConfigError, match="not a DuckDB database") as caught:
        DuckdbWarehouse(url=f"duckdb:///{tmp_path}/notes.txt")
    assert not caught.value.retryable and "--warehouse" in str(caught.value)
    assert (tmp_path / "notes.txt").read_text() == "hello\n"  # left as it was


def test_a_folder_as_the_warehouse_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        DuckdbWarehouse(url=f"duckdb:///{tmp_path}")


def test_a_folder_this_user_cannot_write_is_a_config_error(unwritable_dir: Path) -> None:
    with pytest.raises(ConfigError, match="writable for this user"):
        DuckdbWarehouse(url=f"duckdb:///{unwritable_dir}/w.duckdb")
    assert not (unwritable_dir / "w.duckdb").exists()


def test_a_file_another_process_holds_is_an_outage_not_a_config_fault(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(WarehouseError, match="lock") as caught:
            DuckdbWarehouse(url=f"duckdb:///{path}")
        assert caught.value.retryable and not isinstance(caught.value, ConfigError)
    finally:
        holder.kill()
        holder.wait()


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_the_reader_binds_marks_and_reads_only(url: str) -> None:
    with DuckdbWarehouse(url=url) as warehouse:
        warehouse.load(addresses(3), NONE)
    reader = DuckdbWarehouse.reader(url)
    try:
        sql = "SELECT id, created_at FROM address WHERE source_file = ? ORDER BY id"
        assert reader.run(sql, ["data_points_1.txt"])["id"].to_list() == [1, 2, 3]
        assert reader.run(sql, ["no such file"]).height == 0
        with pytest.raises(WarehouseError, match="read-only"):
            reader.run("DELETE FROM address WHERE id > ?", [0])
    finally:
        reader.close()
