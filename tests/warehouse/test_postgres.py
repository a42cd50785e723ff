"""PostgresWarehouse: the warehouse contracts on a fresh PostgreSQL database, plus what is
PostgreSQL's own: init-db making the database, COPY escaping, refused values, the reader,
the PostGIS geometry and its queries, and an embedded run (the report: tests/report)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
import psycopg
import pytest
from click.testing import CliRunner
from contracts.warehouse import (
    NONE,
    WarehouseAdminContract,
    WarehouseContract,
    addresses,
    keys,
    pruned,
    stored,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl4all import warehouse as warehouse_role
from etl4all.cli import cli
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.report.queries import AnalysisDatabase
from etl4all.warehouse.base import LoadResult
from etl4all.warehouse.postgres import PostgresWarehouse
from etl4all.warehouse.postgres_connection import Dsn
from etl4all.warehouse.postgres_read import numbered
from etl4all.warehouse.read import read_warehouse

pytestmark = pytest.mark.postgres


@pytest.fixture
def warehouse(postgres_ready_url: str) -> Iterator[PostgresWarehouse]:
    with PostgresWarehouse(url=postgres_ready_url) as warehouse:
        warehouse.init()
        yield warehouse


class TestPostgresWarehouse(WarehouseContract, WarehouseAdminContract):
    @pytest.fixture
    def warehouse(self, warehouse: PostgresWarehouse) -> PostgresWarehouse:
        return warehouse


def _admin(url: str) -> psycopg.Connection:
    """A connection to the maintenance database of ``url``'s server."""
    return psycopg.connect(url.rpartition("/")[0] + "/postgres", autocommit=True)


def test_from_url_and_init_twice(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://")):
        with warehouse_role.from_url(url) as warehouse:
            assert isinstance(warehouse, PostgresWarehouse)
            warehouse.init()
            warehouse.init()
    with warehouse_role.from_url(postgres_url) as warehouse:
        warehouse.load(addresses(2), NONE)
        warehouse.init()
        assert warehouse.count() == 2


def test_init_creates_the_database(postgres_ready_url: str) -> None:
    url = postgres_ready_url + "_new"
    try:
        with PostgresWarehouse(url=url) as warehouse:
            assert warehouse.missing_schema() == [
                "address",
                "reject",
                "source_file",
                "address_source",
            ]
            with pytest.raises(ConfigError, match="init-db"):
                warehouse.count()
            warehouse.init()
            assert warehouse.missing_schema() == []
            assert warehouse.count() == 0
    finally:
        with _admin(postgres_ready_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


def test_missing_tables_are_named_before_init_db(postgres_url: str) -> None:
    with PostgresWarehouse(url=postgres_url) as fresh:
        assert fresh.missing_schema() == ["address", "reject", "source_file", "address_source"]
        with pytest.raises(ConfigError, match="init-db"):
            fresh.count()
        fresh.init()
        assert fresh.missing_schema() == []


def test_too_long_value_fails_the_batch_and_rolls_back(warehouse: PostgresWarehouse) -> None:
    warehouse.load(addresses(2), NONE)
    before = stored(warehouse)
    new = addresses(3, offset=10)
    bad = addresses(2).with_columns(street=pl.lit("x" * 300))  # VARCHAR(255)
    with pytest.raises(DataError, match="too long") as info:
        warehouse.load(new, bad)
    assert "nothing was committed" in str(info.value)
    assert stored(warehouse).equals(before)
    assert warehouse.load(new, NONE) == LoadResult(inserted=3)  # the connection still works


def test_a_nul_byte_is_a_data_error(warehouse: PostgresWarehouse) -> None:
    """PostgreSQL text holds no NUL: the batch is refused, not truncated."""
    with pytest.raises(DataError):
        warehouse.load(addresses(1).with_columns(street=pl.lit("a\x00b")), NONE)
    assert warehouse.count() == 0


_TEXT = st.one_of(
    st.none(),
    st.text(
        alphabet=st.one_of(
            st.sampled_from(["\t", "\n", "\r", "\\", "N", " ", "'", '"', "ã", "🚀"]),
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            st.sampled_from(string.printable),
        ),
        max_size=40,
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(street=_TEXT, formatted=_TEXT)
def test_copy_escaping_round_trips(
    warehouse: PostgresWarehouse, street: str | None, formatted: str | None
) -> None:
    rows = addresses(1).with_columns(
        street=pl.Series([street], dtype=pl.String),
        formatted_address=pl.Series([formatted], dtype=pl.String),
    )
    warehouse.load(NONE, rows)  # upsert: the first example inserts, later ones update
    table = stored(warehouse)
    assert table["street"].to_list() == [street]
    assert table["formatted_address"].to_list() == [formatted]


def test_read_warehouse_gives_the_common_shape(
    warehouse: PostgresWarehouse, postgres_ready_url: str
) -> None:
    warehouse.load(addresses(3), NONE)
    frame = read_warehouse(postgres_ready_url)
    assert frame.height == 3
    assert frame.columns == warehouse.select("address", {}, after_id=0, limit=9).columns
    assert frame.columns[:3] == ["id", "latitude", "longitude"]
    assert "geom" not in frame.columns
    assert frame.schema["latitude"] == pl.Float64
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
    assert frame["street"].to_list() == ["Rua dos Andradas"] * 3


def test_an_unknown_role_is_a_config_error_without_the_password(postgres_ready_url: str) -> None:
    parts = urlsplit(postgres_ready_url)
    url = f"postgresql://nobody_etl4all:s3cret@{parts.hostname}:{parts.port}{parts.path}"
    with pytest.raises(ConfigError, match="user and password") as info:
        PostgresWarehouse(url=url)
    assert "s3cret" not in str(info.value)


def test_unknown_options_are_refused(postgres_ready_url: str) -> None:
    with pytest.raises(ConfigError, match="unknown options"):
        PostgresWarehouse(url=postgres_ready_url + "?read_timeout=3")


def test_a_statement_past_its_timeout_fails_in_one_retryable_line(
    postgres_ready_url: str, warehouse: PostgresWarehouse
) -> None:
    reader = PostgresWarehouse.reader(postgres_ready_url + "?statement_timeout=0.2")
    try:
        with pytest.raises(WarehouseError) as info:
            reader.run("SELECT pg_sleep(60)", [])
        assert reader.run("SELECT 1 AS one", []).item() == 1  # the session goes on
    finally:
        reader.close()
    text = str(info.value)
    assert type(info.value).retryable and "\n" not in text
    assert "did not finish within 0.2 s (statement_timeout)" in text


def test_a_load_behind_a_transaction_that_never_ends_fails_retryably(
    postgres_ready_url: str, warehouse: PostgresWarehouse
) -> None:
    warehouse.load(addresses(2), NONE)
    with psycopg.connect(postgres_ready_url) as holder:  # its transaction holds the lock until exit
        holder.execute("LOCK TABLE address IN ACCESS EXCLUSIVE MODE")
        late = pytest.raises(WarehouseError, match=r"within 0\.2 s \(lock_timeout\)")
        with PostgresWarehouse(url=postgres_ready_url + "?lock_timeout=0.2") as blocked, late:
            blocked.load(addresses(3, offset=10), NONE)
    assert stored(warehouse).height == 2  # nothing of the batch was committed
    assert warehouse.load(addresses(3, offset=10), NONE) == LoadResult(inserted=3)


@pytest.mark.parametrize("query", ["statement_timeout=soon", "lock_timeout=-1"])
def test_timeouts_must_be_seconds(query: str) -> None:
    with pytest.raises(ConfigError, match="must be seconds"):
        Dsn.parse(f"postgresql://etl@db.example/w?{query}")


def test_a_tls_set_up_that_cannot_verify_is_a_config_error(
    postgres_ready_url: str, tmp_path: Path
) -> None:
    """No CA file (or a server without TLS): it fails at once, saying why, not "retry"."""
    url = f"{postgres_ready_url}?sslmode=verify-full&sslrootcert={tmp_path}/no-ca.pem"
    with pytest.raises(ConfigError, match="sslmode"):
        PostgresWarehouse(url=url)


def test_a_ca_file_means_verify_full_and_an_unchecked_mode_is_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = "postgresql://etl:pw@db.example/w"
    checked = Dsn.parse(base + "?sslrootcert=/etc/ca.pem")
    assert dict(checked.options)["sslmode"] == "verify-full"
    assert dict(Dsn.parse(base + "?sslrootcert=/ca.pem&sslmode=verify-ca").options)["sslmode"] == (
        "verify-ca"
    )
    assert not caplog.records
    Dsn.parse(base + "?sslmode=require")
    (record,) = caplog.records
    assert "sslmode=require encrypts without checking" in record.getMessage()
    assert "pw" not in record.getMessage()


def test_marks_become_numbered_outside_literals_and_comments() -> None:
    sql = "SELECT '?', \"a?\" -- why?\n FROM t /* ? */ WHERE a = ? AND b = 'it''s?' AND c = ?"
    assert numbered(sql) == (
        "SELECT '?', \"a?\" -- why?\n FROM t /* ? */ WHERE a = $1 AND b = 'it''s?' AND c = $2"
    )


def test_the_reader_binds_marks_and_types_an_empty_result(
    postgres_ready_url: str, warehouse: PostgresWarehouse
) -> None:
    warehouse.load(addresses(3), NONE)
    reader = PostgresWarehouse.reader(postgres_ready_url)
    try:
        sql = "SELECT id, latitude, created_at FROM address WHERE source_file = ? ORDER BY id"
        found = reader.run(sql, ["data_points_1.txt"])
        none = reader.run(sql, ["no such file"])
        sums = reader.run("SELECT SUM(id) AS s, MIN(latitude) AS m FROM address", [])
        with pytest.raises(ConfigError, match="init-db"):
            reader.run("SELECT * FROM no_such_table", [])
    finally:
        reader.close()
    assert found.height == 3 and none.height == 0
    typed = {"id": pl.Int64, "latitude": pl.Float64, "created_at": pl.Datetime("us")}
    assert none.schema == found.schema == typed
    assert sums.schema == {"s": pl.Int64, "m": pl.Float64}
    assert sums.row(0) == (sum(found["id"]), found["latitude"].min())


def test_the_reader_is_read_only(postgres_ready_url: str, warehouse: PostgresWarehouse) -> None:
    reader = PostgresWarehouse.reader(postgres_ready_url)
    try:
        with pytest.raises(Exception, match="read-only"):
            reader.run("DELETE FROM address", [])
    finally:
        reader.close()


# -- PostGIS ------------------------------------------------------------------------------


def test_postgis_gives_the_address_table_an_indexed_point(warehouse: PostgresWarehouse) -> None:
    warehouse.load(addresses(2), NONE)
    with warehouse._transaction("checking") as cur:
        cur.execute("SELECT ST_AsText(geom), ST_SRID(geom) FROM address ORDER BY latitude DESC")
        assert cur.fetchone() == ("POINT(-51.20150245 -30.04982864)", 4326)
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_address_geom'")
        (index,) = cur.fetchone() or ("",)
    assert "USING gist (geom)" in index


def test_postgis_queries_find_the_nearest_points_and_those_in_a_polygon(
    warehouse: PostgresWarehouse, postgres_ready_url: str
) -> None:
    rows = addresses(50)  # a line of points 1e-8 degrees apart, going south-east
    far = addresses(1, offset=10_000_000).with_columns(latitude=pl.lit(-23.5), longitude=-46.6)
    warehouse.load(pl.concat([rows, far]), NONE)
    with AnalysisDatabase(url=postgres_ready_url) as db:
        nearest = db.run("postgis/nearest_points", -51.20150245, -30.04982864, 3)
        inside = db.run(
            "postgis/points_within",
            "POLYGON((-52 -31, -50 -31, -50 -29, -52 -29, -52 -31))",
        )
    assert keys(nearest).to_list() == keys(rows).head(3).to_list()
    assert nearest["distance_m"].to_list()[0] == pytest.approx(0, abs=1e-6)
    assert nearest["distance_m"].is_sorted()
    assert set(keys(inside)) == set(keys(rows))


# -- an embedded run ------------------------------------------------------------------------


def test_an_embedded_run_loads_into_postgresql_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_ready_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init-db", "--warehouse", postgres_ready_url]).exit_code == 0
    runner.invoke(cli, ["sample", "in", "--files", "3", "--points", "100"], catch_exceptions=False)
    run = ["run", "in", "-q", "--warehouse", postgres_ready_url, "--final-seconds", "0"]
    first = runner.invoke(cli, run)
    assert first.exit_code == 0, first.output
    assert "3 processed" in first.output
    loaded = read_warehouse(postgres_ready_url)
    assert loaded.height > 0 and loaded["geocoder"].unique().to_list() == ["offline"]
    again = runner.invoke(cli, run)
    assert again.exit_code == 0, again.output
    assert "0 processed, 3 skipped" in again.output
    assert read_warehouse(postgres_ready_url).equals(loaded)


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from etl4all.errors import MissingDependencyError

    for name in [m for m in sys.modules if m.startswith("etl4all.warehouse.postgres")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"psycopg.*etl4all\[postgres\]"):
        warehouse_role.from_url("postgresql://postgres@127.0.0.1/x")


def test_loaders_racing_on_the_same_coordinates_lose_nothing(
    warehouse: PostgresWarehouse, postgres_ready_url: str
) -> None:
    """Two loaders insert the same new coordinates at once (each for its own file): one
    inserts each row, the other waits on the unique index and merges; every file holds all."""
    from concurrent.futures import ThreadPoolExecutor

    def load(source: str) -> list[LoadResult]:
        with PostgresWarehouse(url=postgres_ready_url) as mine:
            parts = range(4) if source == "a.txt" else reversed(range(4))
            return [  # in opposite orders
                mine.load(rows if source == "a.txt" else rows.reverse(), NONE, version=1)
                for rows in (addresses(500, offset=part * 500, source=source) for part in parts)
            ]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(load, ["a.txt", "b.txt"]))
    assert sum(r.inserted for loads in results for r in loads) == 2000
    assert warehouse.count() == 2000
    assert set(stored(warehouse)["source_file"]) == {"a.txt"}  # the smallest provenance
    members = warehouse._query("counting", "SELECT COUNT(*) AS n FROM address_source", [])
    assert members["n"].item() == 4000
    assert pruned(warehouse, "a.txt", 2, keys(addresses(0))) == 0  # b.txt holds every row
    assert set(stored(warehouse)["source_file"]) == {"b.txt"}
