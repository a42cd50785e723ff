"""The dry-run driver: calls and cost without calling any API."""

from __future__ import annotations

from pathlib import Path

import pytest
from geocoders.fake_api import FakeApi

from etl4all import sample
from etl4all.operations.estimate import estimate
from etl4all.runners.embedded import run
from etl4all.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    sample.write_sample(tmp_path / "a", files=2, points=50, seed=4, duplicate_rate=0.4)
    sample.write_sample(tmp_path / "b", files=1, points=50, seed=4, duplicate_rate=0.4)
    return Settings(state_url=f"sqlite:///{tmp_path}/s.db", price_per_1000=5.0)


def test_offline_needs_no_calls(settings: Settings) -> None:
    result = estimate(["a"], settings)
    assert result.files == 2 and result.points > result.distinct > 0
    assert (result.cached, result.calls, result.cost) == (0, 0, 0.0)


def test_keys_are_counted_once_across_sources_and_the_cache_is_free(
    settings: Settings, tmp_path: Path
) -> None:
    with FakeApi() as api:
        google = settings.replace(
            geocoder="google",
            google_key=api.key,
            google_url=api.google_url,
            warehouse_url=f"duckdb:///{tmp_path}/w.duckdb",
        )
        both = estimate(["a", "b"], google)
        only_a = estimate(["a"], google)
        assert both.files == 3 and both.distinct >= only_a.distinct
        assert both.calls == both.distinct and both.cost == both.calls * 5.0 / 1000
        run(["a"], google)
        after = estimate(["a", "b"], google)
        assert api.calls == only_a.distinct  # the run paid; estimate never calls
    assert after.cached == only_a.distinct and after.calls == both.distinct - only_a.distinct
