"""MySqlWarehouse: the Warehouse contract on a fresh MariaDB/MySQL database, plus the
LOAD DATA guards (warnings, escaping, local_infile) and reading through connectorx."""

from __future__ import annotations

import string
from collections.abc import Iterator
from urllib.parse import urlsplit

import polars as pl
import pymysql
import pytest
from contracts.warehouse import (
    NONE,
    WarehouseAdminContract,
    WarehouseContract,
    addresses,
    stored,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl4all import warehouse as warehouse_role
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.warehouse.base import LoadResult
from etl4all.warehouse.mysql import MySqlWarehouse
from etl4all.warehouse.mysql_connection import Dsn, connect, errors
from etl4all.warehouse.read import read_warehouse

pytestmark = pytest.mark.mysql


def _admin(url: str) -> pymysql.Connection:
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )


@pytest.fixture(scope="module", autouse=True)
def local_infile_on() -> None:
    """The server must allow LOAD DATA LOCAL (MariaDB's default; MySQL 8 needs this)."""
    from service_urls import SERVICE_URLS

    conn = _admin(SERVICE_URLS["mysql"])
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.local_infile")
        if not cur.fetchone()[0]:
            cur.execute("SET GLOBAL local_infile = 1")
    conn.close()


@pytest.fixture
def warehouse(mysql_url: str) -> Iterator[MySqlWarehouse]:
    with MySqlWarehouse(url=mysql_url) as warehouse:
        warehouse.init()
        yield warehouse


class TestMySqlWarehouse(WarehouseContract, WarehouseAdminContract):
    @pytest.fixture
    def warehouse(self, warehouse: MySqlWarehouse) -> MySqlWarehouse:
        return warehouse


def test_from_url_and_init_twice(mysql_url: str) -> None:
    with warehouse_role.from_url(mysql_url) as warehouse:
        assert isinstance(warehouse, MySqlWarehouse)
        warehouse.init()
        warehouse.load(addresses(2), NONE)
        warehouse.init()
        assert warehouse.count() == 2


def test_init_creates_the_database(mysql_url: str) -> None:
    url = mysql_url + "_new"
    try:
        with MySqlWarehouse(url=url) as warehouse:
            with pytest.raises(ConfigError, match="init-db"):
                warehouse.count()
            warehouse.init()
            assert warehouse.count() == 0
            conn = warehouse._connection()
            with conn.cursor() as cur:
                cur.execute("SELECT @@character_set_database")
                assert cur.fetchone()[0] == "utf8mb4"
    finally:
        with _admin(mysql_url).cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{urlsplit(url).path[1:]}`")


def test_too_long_value_fails_the_batch_and_rolls_back(warehouse: MySqlWarehouse) -> None:
    warehouse.load(addresses(2), NONE)
    before = stored(warehouse)
    new = addresses(3, offset=10)
    bad = addresses(2).with_columns(street=pl.lit("x" * 300))  # VARCHAR(255)
    with pytest.raises(DataError, match=r"1406|Data too long|truncated") as info:
        warehouse.load(new, bad)
    assert "nothing was committed" in str(info.value)
    assert warehouse.count() == 2
    assert stored(warehouse).equals(before)
    # the connection is still usable afterwards
    assert warehouse.load(new, NONE) == LoadResult(inserted=3)


def test_too_long_insert_fails_the_batch(warehouse: MySqlWarehouse) -> None:
    with pytest.raises(DataError, match="Warning"):
        warehouse.load(addresses(2).with_columns(number=pl.lit("9" * 40)), NONE)
    assert warehouse.count() == 0


def test_read_warehouse_returns_the_rows(warehouse: MySqlWarehouse, mysql_url: str) -> None:
    warehouse.load(addresses(3), NONE)
    frame = read_warehouse(mysql_url)
    assert frame.height == 3
    assert frame.schema["latitude"] == pl.Float64
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["source_line"].is_integer()
    assert frame["street"].to_list() == ["Rua dos Andradas"] * 3
    assert frame.columns[:3] == ["id", "latitude", "longitude"]


_TEXT = st.one_of(
    st.none(),
    st.text(
        alphabet=st.one_of(
            st.sampled_from(["\t", "\n", "\r", "\\", "\x00", "N", " ", "'", '"', "ã", "🚀"]),
            st.characters(blacklist_categories=("Cs",), max_codepoint=0x1FFFF),
            st.sampled_from(string.printable),
        ),
        max_size=40,
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(street=_TEXT, formatted=_TEXT)
def test_escaping_round_trip(
    warehouse: MySqlWarehouse, street: str | None, formatted: str | None
) -> None:
    rows = addresses(1).with_columns(
        street=pl.Series([street], dtype=pl.String),
        formatted_address=pl.Series([formatted], dtype=pl.String),
    )
    warehouse.load(NONE, rows)  # upsert: the first example inserts, later ones update
    table = stored(warehouse)
    assert table["street"].to_list() == [street]
    assert table["formatted_address"].to_list() == [formatted]


def test_wrong_password_is_a_config_error_without_the_password(mysql_url: str) -> None:
    parts = urlsplit(mysql_url)
    url = f"mysql://nobody_etl4all:s3cret@{parts.hostname}:{parts.port}{parts.path}"
    with pytest.raises(ConfigError) as info:
        MySqlWarehouse(url=url)
    assert "s3cret" not in str(info.value)


def test_local_infile_off_fails_fast(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server with local_infile=OFF is refused when the warehouse is built.

    The global setting is shared with other tests, so the server's answer is faked
    at the one query that reads it.
    """
    real = pymysql.cursors.Cursor.execute

    def execute(self: pymysql.cursors.Cursor, query: str, args: object = None) -> int:
        if "local_infile" in query:
            query = "SELECT 0"
        return real(self, query, args)

    monkeypatch.setattr(pymysql.cursors.Cursor, "execute", execute)
    with pytest.raises(ConfigError, match=r"local_infile.*SET GLOBAL local_infile=1"):
        MySqlWarehouse(url=mysql_url)


def test_connect_timeout_bounds_the_handshake_not_the_statements(mysql_url: str) -> None:
    """A statement may outlast connect_timeout (a LOAD DATA does); read_timeout bounds it."""
    patient = Dsn.parse(mysql_url + "?connect_timeout=1&read_timeout=10")
    conn = connect(patient)
    with errors("sleeping", patient), conn.cursor() as cur:
        cur.execute("SELECT SLEEP(1.5)")  # longer than the handshake's 1 s
        assert cur.fetchone() == (0,)
    conn.close()
    hasty = Dsn.parse(mysql_url + "?read_timeout=0.5")
    conn = connect(hasty)
    with pytest.raises(WarehouseError) as info, errors("sleeping", hasty), conn.cursor() as cur:
        cur.execute("SELECT SLEEP(5)")
    host = f"{hasty.host}:{hasty.port}"
    assert f"{host} did not answer within 0.5 s (read_timeout)" in str(info.value)


def test_missing_schema_are_named_before_init_db(mysql_url: str) -> None:
    with MySqlWarehouse(url=mysql_url) as fresh:
        assert fresh.missing_schema() == ["address", "reject", "source_file", "address_source"]
        fresh.init()
        assert fresh.missing_schema() == []
    with MySqlWarehouse(url=mysql_url + "_no_such_db") as nowhere:
        assert nowhere.missing_schema() == ["address", "reject", "source_file", "address_source"]


def test_init_db_gives_rows_loaded_before_file_versions_to_their_file(mysql_url: str) -> None:
    with MySqlWarehouse(url=mysql_url) as wh:
        wh.init()
        wh.load(addresses(3), NONE)
    database = urlsplit(mysql_url).path[1:]
    with _admin(mysql_url) as admin, admin.cursor() as cur:
        cur.execute(f"DELETE FROM `{database}`.address_source")  # as before file versions
    with MySqlWarehouse(url=mysql_url) as old:
        old.init()
        old.init()  # once filled, left alone
        assert old.prune("data_points_1.txt", 1, pl.Series([], dtype=pl.String)) == 0  # marked
        assert old.finalize("data_points_1.txt", 1) == 3


def test_a_membership_left_without_its_row_is_upserted_not_refused(
    warehouse: MySqlWarehouse, mysql_url: str
) -> None:
    """Memberships of coordinates new to ``address`` go straight in with ``LOAD DATA``; one
    that is already there (its row gone by some other hand) takes the upsert instead."""
    warehouse.load(addresses(3), NONE)
    database = urlsplit(mysql_url).path[1:]
    with _admin(mysql_url) as admin, admin.cursor() as cur:
        cur.execute(f"DELETE FROM `{database}`.address")
    earlier = addresses(3).with_columns(line=pl.col("line") - 1)
    assert warehouse.load(earlier, NONE) == LoadResult(inserted=3)
    with _admin(mysql_url) as admin, admin.cursor() as cur:
        cur.execute(f"SELECT source_line FROM `{database}`.address_source ORDER BY source_line")
        lines = [line for (line,) in cur.fetchall()]
    assert lines == sorted(earlier.get_column("line").to_list())


@pytest.mark.parametrize("column", ["detail", "reasons"])
def test_init_db_upgrades_a_reject_table_made_before_a_column(mysql_url: str, column: str) -> None:
    with MySqlWarehouse(url=mysql_url) as wh:
        wh.init()
    with _admin(mysql_url) as admin, admin.cursor() as cur:
        cur.execute(f"ALTER TABLE `{urlsplit(mysql_url).path[1:]}`.reject DROP COLUMN {column}")
    with MySqlWarehouse(url=mysql_url) as old:
        assert old.missing_schema() == [f"reject.{column}"]
        old.init()
        assert old.missing_schema() == []
        old.init()  # the upgrade is skipped once made
        assert old.missing_schema() == []


def test_the_reader_binds_marks_and_types_an_empty_result(
    mysql_url: str, warehouse: MySqlWarehouse
) -> None:
    warehouse.load(addresses(3), NONE)
    reader = MySqlWarehouse.reader(mysql_url)
    try:
        sql = "SELECT id, latitude, created_at FROM address WHERE source_file = ? ORDER BY id"
        found = reader.run(sql, ["data_points_1.txt"])
        none = reader.run(sql, ["no such file"])
    finally:
        reader.close()
    assert found.height == 3 and none.height == 0
    typed = {"id": pl.Int64, "latitude": pl.Float64, "created_at": pl.Datetime("us")}
    assert none.schema == found.schema == typed
