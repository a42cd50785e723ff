"""The files of sql/analysis/ run unchanged on DuckDB, MariaDB and PostgreSQL and give the same
answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import synthetic
from polars.testing import assert_frame_equal

from etl4all.report import queries
from etl4all.report.queries import AnalysisDatabase
from etl4all.warehouse.base import WarehouseBackend
from etl4all.warehouse.duckdb import DuckdbWarehouse

PARAMS: dict[str, tuple[int | float | str, ...]] = {
    "coverage": (),
    "density": (-30.2, 0.01, -51.3, 0.01),
    "duplicates": (),
    "headline": (),
    "map_sample": (7,),
    "points_per_file": (),
    "rejects_per_reason": (),
    "stale_geocodes": (
        (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S.%f"),
    ),
    "streets_per_city": (),
    "top_neighborhoods": (5,),
    "top_streets": (5,),
}
LOAD_TIMES = {"first_loaded", "last_loaded", "first_seen", "last_seen"}
"""Columns of the load time, which differs between the two warehouses."""
ROWS = 2000


@pytest.fixture(scope="module")
def addresses() -> pl.DataFrame:
    return synthetic.addresses(ROWS, seed=1)


def fill(warehouse: WarehouseBackend, addresses: pl.DataFrame) -> None:
    warehouse.load(addresses, addresses.clear())
    warehouse.load_rejects(synthetic.rejects())


def answers(url: str) -> dict[str, pl.DataFrame]:
    with AnalysisDatabase(url=url) as db:
        return {name: db.run(name, *PARAMS[name]) for name in queries.names()}


def test_every_query_has_parameters_in_this_test() -> None:
    assert sorted(PARAMS) == queries.names()
    for name, params in PARAMS.items():
        assert queries.text(name).count("?") == len(params), name


def test_queries_answer_the_questions_on_duckdb(tmp_path: Path, addresses: pl.DataFrame) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    with DuckdbWarehouse(url=url) as wh:
        fill(wh, addresses)
    got = answers(url)

    assert got["headline"]["address_rows"].item() == ROWS
    assert got["headline"]["street_level"].item() == addresses["street"].is_not_null().sum()
    assert got["duplicates"].is_empty()
    top = (
        addresses.drop_nulls("neighborhood")
        .group_by("neighborhood", "city")
        .agg(points=pl.len())
        .sort("points", descending=True)
        .head(5)
    )
    assert_frame_equal(
        got["top_neighborhoods"].select("neighborhood", "points"),
        top.select("neighborhood", pl.col("points").cast(pl.Int64)),
    )
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    stale = addresses.filter(pl.col("geocoded_at") < cutoff)
    assert dict(got["stale_geocodes"].select("geocoder", "address_rows").iter_rows()) == dict(
        stale.group_by("geocoder").len().iter_rows()
    )
    assert got["rejects_per_reason"].select("reason", "detail", "rejects").rows() == [
        ("missing_longitude", None, 5),
        ("dms_mismatch", None, 3),
        ("geocode_failed", None, 2),
        ("unrecognized", "decimal comma: write -30.04982864, not -30,04982864", 2),
        ("unrecognized", None, 1),
    ]
    assert got["density"]["points"].sum() == ROWS
    assert got["map_sample"].height == ROWS // 7


def test_a_missing_table_is_a_config_error(tmp_path: Path) -> None:
    import duckdb

    from etl4all.errors import ConfigError

    duckdb.connect(str(tmp_path / "bare.duckdb")).close()
    with (
        AnalysisDatabase(url=f"duckdb:///{tmp_path}/bare.duckdb") as db,
        pytest.raises(ConfigError, match="init-db"),
    ):
        db.run("headline")


def test_a_postgis_query_on_duckdb_is_refused_by_name(tmp_path: Path) -> None:
    from etl4all.errors import ConfigError

    url = f"duckdb:///{tmp_path}/w.duckdb"
    DuckdbWarehouse(url=url).close()
    assert "postgis/nearest_points" not in queries.names()  # the report never runs them
    with AnalysisDatabase(url=url) as db, pytest.raises(ConfigError, match="PostGIS"):
        db.run("postgis/nearest_points", -51.2, -30.0, 3)


@pytest.mark.mysql
def test_mariadb_gives_the_same_answers(
    tmp_path: Path, mysql_url: str, addresses: pl.DataFrame
) -> None:
    from etl4all.warehouse.mysql import MySqlWarehouse

    with MySqlWarehouse(url=mysql_url) as maria:
        maria.init()
        fill(maria, addresses)
    assert_same_as_on_duckdb(tmp_path, answers(mysql_url), addresses)


@pytest.mark.postgres
def test_postgresql_gives_the_same_answers(
    tmp_path: Path, postgres_url: str, addresses: pl.DataFrame
) -> None:
    from etl4all.warehouse.postgres import PostgresWarehouse

    with PostgresWarehouse(url=postgres_url) as postgres:
        postgres.init()
        fill(postgres, addresses)
    assert_same_as_on_duckdb(tmp_path, answers(postgres_url), addresses)


def assert_same_as_on_duckdb(
    tmp_path: Path, got: dict[str, pl.DataFrame], addresses: pl.DataFrame
) -> None:
    """``got``, the answers of another database, are DuckDB's on the same rows."""
    duck_url = f"duckdb:///{tmp_path}/w.duckdb"
    with DuckdbWarehouse(url=duck_url) as duck:
        fill(duck, addresses)
    on_duckdb = answers(duck_url)

    for name in queries.names():
        duck, other = on_duckdb[name], got[name]
        assert duck.columns == other.columns, name
        if name == "map_sample":  # ids (hence the sample) follow each database's load order
            assert duck.height == other.height == ROWS // 7
            continue
        for column in LOAD_TIMES.intersection(duck.columns):
            assert duck[column].null_count() == other[column].null_count() == 0
        kept = [c for c in duck.columns if c not in LOAD_TIMES]
        assert_frame_equal(
            duck.select(kept).sort(kept, nulls_last=True),
            other.select(kept).sort(kept, nulls_last=True),
            check_dtypes=False,
            abs_tol=1e-9,
        )
        assert duck.height or name == "duplicates", f"{name} answered nothing"


def test_the_queries_ship_with_the_package() -> None:
    import configparser

    repo = Path(__file__).resolve().parents[2]
    config = configparser.ConfigParser()
    config.read(repo / "setup.cfg")
    shipped = config["options.data_files"]["share/etl4all/sql/analysis"].strip()
    assert sorted(p.stem for p in repo.glob(shipped)) == queries.names()
