"""The transform stage: dedup, cache, budget and join-back, against real geocoders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from geocoders.fake_api import FakeApi

from etl4all import frames, sample
from etl4all.errors import BudgetExceededError, BudgetTooSmallError, ConfigError
from etl4all.geocoders.base import Geocoder
from etl4all.parsing import parse
from etl4all.quota.memory import MemoryQuota
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.stages.transform import CallBudget, geocode_frame
from etl4all.state.base import GeocodeCache


@pytest.fixture
def points() -> pl.DataFrame:
    table = sample.records(files=1, points=60, seed=5, duplicate_rate=0.5)
    return parse.parse(sample.render(table), "a.txt").points


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_url=f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def cache(settings: Settings) -> Iterator[GeocodeCache]:
    with wiring.open_state(settings) as cache:
        yield cache


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    with FakeApi() as api:
        yield api


@pytest.fixture
def google(fake_api: FakeApi, settings: Settings) -> Iterator[tuple[Geocoder, Settings]]:
    settings = settings.replace(
        geocoder="google", google_key=fake_api.key, google_url=fake_api.google_url, qps=500.0
    )
    with wiring.open_geocoder(settings, MemoryQuota()) as geocoder:
        yield geocoder, settings


def distinct(points: pl.DataFrame) -> int:
    keys = points.select(frames.scaled_key(pl.col(c), 6) for c in ("latitude", "longitude"))
    return keys.unique().height


def test_offline_dedups_and_addresses_every_point(
    points: pl.DataFrame, settings: Settings, cache: GeocodeCache
) -> None:
    with wiring.open_geocoder(settings, MemoryQuota()) as offline:
        result = geocode_frame(points, offline, cache, wiring.transform_config(settings))
    assert result.addresses.height == points.height and result.rejects.height == 0
    assert result.stats.distinct == distinct(points) < points.height
    assert result.addresses.get_column("city").null_count() == 0
    assert cache.cache_size() == 0  # the offline geocoder is faster than any cache


def test_paid_geocoder_is_asked_once_per_distinct_key_then_cached(
    points: pl.DataFrame, cache: GeocodeCache, google: tuple[Geocoder, Settings], fake_api: FakeApi
) -> None:
    geocoder, settings = google
    config = wiring.transform_config(settings)
    first = geocode_frame(points, geocoder, cache, config)
    assert fake_api.calls == first.stats.calls == distinct(points)
    again = geocode_frame(points, geocoder, cache, config)
    assert fake_api.calls == distinct(points)
    assert again.stats.cache_hits == distinct(points) and again.stats.calls == 0
    columns = ["source", "line", "street", "city"]
    assert again.addresses.select(columns).equals(first.addresses.select(columns))


def test_budget_is_spent_across_batches_and_refuses_before_calling(
    points: pl.DataFrame, cache: GeocodeCache, google: tuple[Geocoder, Settings], fake_api: FakeApi
) -> None:
    geocoder, settings = google
    config = wiring.transform_config(settings)
    half = points.height // 2
    budget = CallBudget(distinct(points[:half]))
    geocode_frame(points[:half], geocoder, cache, config, budget)
    spent = fake_api.calls
    with pytest.raises(BudgetExceededError, match="--max-calls"):
        geocode_frame(points[half:], geocoder, cache, config, budget)
    assert fake_api.calls == spent  # nothing of the refused batch was asked
    assert budget.spent == spent


def test_budget_counts_only_what_the_cache_cannot_answer(
    points: pl.DataFrame, cache: GeocodeCache, google: tuple[Geocoder, Settings]
) -> None:
    geocoder, settings = google
    config = wiring.transform_config(settings)
    geocode_frame(points, geocoder, cache, config)
    budget = CallBudget(0)
    result = geocode_frame(points, geocoder, cache, config, budget)  # all cached: free
    assert result.addresses.height == points.height and budget.spent == 0


def test_call_budget_without_limit_never_refuses() -> None:
    budget = CallBudget(None)
    budget.spend(10**9, "google")
    assert budget.spent == 10**9
    limited = CallBudget(5)
    limited.spend(5, "google")
    with pytest.raises(BudgetExceededError, match="5 spent so far"):
        limited.spend(1, "google")


def spoiled(points: pl.DataFrame) -> pl.DataFrame:
    """``points`` with a NaN latitude in row 3 and an infinite longitude in row 5."""
    row = pl.int_range(pl.len())
    return points.with_columns(
        latitude=pl.when(row == 3).then(float("nan")).otherwise("latitude"),
        longitude=pl.when(row == 5).then(float("inf")).otherwise("longitude"),
    )


def test_a_row_with_an_invalid_coordinate_is_rejected_and_the_rest_goes_on(
    points: pl.DataFrame, cache: GeocodeCache, google: tuple[Geocoder, Settings], fake_api: FakeApi
) -> None:
    geocoder, settings = google
    bad = spoiled(points)
    result = geocode_frame(bad, geocoder, cache, wiring.transform_config(settings))
    good = points.filter(~pl.int_range(pl.len()).is_in([3, 5]))
    assert result.addresses.select("source", "line").equals(good.select("source", "line"))
    assert result.rejects.select("line", "reason").rows() == [
        (bad["line"][3], "invalid_coordinate"),
        (bad["line"][5], "invalid_coordinate"),
    ]
    assert result.rejects["text"][0] == f"NaN,{bad['longitude'][3]}"
    assert result.rejects["text"][1] == f"{bad['latitude'][5]},inf"
    assert fake_api.calls == distinct(good)  # nothing invalid was sent to the API


def test_a_batch_of_only_invalid_coordinates_is_all_rejects(
    points: pl.DataFrame, settings: Settings, cache: GeocodeCache
) -> None:
    bad = points[:4].with_columns(latitude=pl.Series([None, 90.5, -91.0, float("-inf")]))
    with wiring.open_geocoder(settings, MemoryQuota()) as offline:
        result = geocode_frame(bad, offline, cache, wiring.transform_config(settings))
    assert result.addresses.height == 0
    assert result.rejects["reason"].to_list() == ["invalid_coordinate"] * 4
    assert result.rejects["text"][0].startswith("null,")


def test_a_budget_below_one_batch_is_a_config_fault_and_below_the_work_is_not() -> None:
    """Issue 17, item 6: a batch needing more than the whole --max-calls can never progress
    (its calls are refused before any is made, so nothing gets cached): exit 2; one that
    needs more than what is left, after others were paid, goes on at the next run: exit 1."""
    with pytest.raises(BudgetTooSmallError, match="more than the whole --max-calls 5") as caught:
        CallBudget(5).spend(6, "google")
    assert isinstance(caught.value, ConfigError) and "--batch-size" in str(caught.value)
    budget = CallBudget(10)
    budget.spend(6, "google")
    with pytest.raises(BudgetExceededError) as caught:
        budget.spend(6, "google")
    assert not isinstance(caught.value, ConfigError) and budget.spent == 6
    assert "what was paid is cached" in str(caught.value)
    with pytest.raises(BudgetTooSmallError, match="--max-calls 0"):
        CallBudget(0).spend(1, "google")
    CallBudget(0).spend(0, "google")  # all from the cache: nothing to pay, nothing refused
