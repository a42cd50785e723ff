"""The load stage: inserts, updates and replays on DuckDB with the warehouse as lookup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from etl4all import sample
from etl4all.lookup.base import Lookup
from etl4all.parsing import parse
from etl4all.quota.memory import MemoryQuota
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.stages.load import Addresses, apply
from etl4all.stages.transform import geocode_frame
from etl4all.warehouse.base import LoadResult, Warehouse


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[tuple[Warehouse, Lookup]]:
    settings = Settings(warehouse_url=f"duckdb:///{tmp_path}/w.duckdb")
    with wiring.open_warehouse(settings) as wh, wiring.open_lookup(settings, wh) as keys:
        yield wh, keys


def addresses(seed: int, points: int = 40) -> pl.DataFrame:
    """Sample points with offline addresses (the offline geocoder never uses the cache)."""
    table = sample.records(files=1, points=points, seed=seed, duplicate_rate=0.2)
    frame = parse.parse(sample.render(table), f"f{seed}.txt").points
    settings = Settings(state_url="sqlite:///state.db")
    with (
        wiring.open_geocoder(settings, MemoryQuota()) as offline,
        wiring.open_state(settings) as cache,
    ):
        return geocode_frame(frame, offline, cache, wiring.transform_config(settings)).addresses


def load_frame(rows: pl.DataFrame, wh: Warehouse, keys: Lookup) -> LoadResult:
    """What loading ``rows`` (of their files' current versions) did."""
    return apply(Addresses(rows), wh, keys).load


def test_new_rows_are_inserted_once_per_coordinate(
    backends: tuple[Warehouse, Lookup],
) -> None:
    wh, keys = backends
    rows = addresses(1)
    result = load_frame(rows, wh, keys)
    distinct = rows.select("latitude", "longitude").unique().height
    assert result == LoadResult(inserted=distinct) and wh.count() == distinct


def test_a_replayed_batch_changes_nothing(backends: tuple[Warehouse, Lookup]) -> None:
    wh, keys = backends
    rows = addresses(1)
    load_frame(rows, wh, keys)
    again = load_frame(rows, wh, keys)
    assert again.inserted == 0 and again.updated == 0
    assert wh.count() == rows.select("latitude", "longitude").unique().height


def test_an_empty_batch_is_a_no_op(backends: tuple[Warehouse, Lookup]) -> None:
    wh, keys = backends
    assert load_frame(addresses(1).clear(), wh, keys) == LoadResult()
    assert wh.count() == 0


def test_a_row_with_an_invalid_coordinate_is_kept_as_a_reject(
    backends: tuple[Warehouse, Lookup],
) -> None:
    wh, keys = backends
    rows = addresses(1)
    bad = rows.with_columns(
        latitude=pl.when(pl.int_range(pl.len()) == 0).then(float("nan")).otherwise("latitude")
    )
    result = load_frame(bad, wh, keys)
    distinct = rows[1:].select("latitude", "longitude").unique().height
    assert result.inserted == distinct and wh.count() == distinct
    reject = pl.DataFrame(
        {"source": [rows["source"][0]], "line": [rows["line"][0]]},
        schema_overrides={"line": pl.UInt32},
    ).with_columns(reason=pl.lit("invalid_coordinate"), text=pl.lit("NaN"))
    assert wh.load_rejects(reject) == 0  # recorded already, by load_frame
    assert wh.load_rejects(reject.with_columns(reason=pl.lit("other"))) == 1
