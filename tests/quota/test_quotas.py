"""The quota role: its scheme table, and the run's quota (from the state URL), which its
geocoders share."""

from __future__ import annotations

import pytest

from etl4all import quota, urls
from etl4all.geocoders.api import ApiGeocoder
from etl4all.quota.base import Quota
from etl4all.quota.memory import MemoryQuota
from etl4all.quota.redis import RedisQuota
from etl4all.runners import wiring
from etl4all.settings import Settings


@pytest.mark.parametrize("scheme", sorted(quota.SCHEMES))
def test_every_table_entry_is_a_quota(scheme: str) -> None:
    assert isinstance(urls.load_class("quota", scheme, quota.SCHEMES), type)
    with quota.from_url(f"{scheme}://127.0.0.1:6379/0") as built:  # built without any I/O
        assert isinstance(built, Quota)


def limiter(settings: Settings, quota: MemoryQuota) -> object:
    """The limiter of the API geocoder ``settings`` name, built on ``quota``."""
    geocoder = wiring.open_geocoder(settings, quota)
    assert isinstance(geocoder, ApiGeocoder)
    return geocoder._runner.limiter


def test_the_geocoders_of_a_run_share_its_quota_and_no_other() -> None:
    settings = Settings(geocoder="google", google_key="k", state_url="sqlite:///s.db")
    with wiring.open_quota(settings) as run, wiring.open_quota(settings) as other:
        assert isinstance(run, MemoryQuota) and isinstance(other, MemoryQuota)
        assert limiter(settings, run) is limiter(settings, run)
        assert limiter(settings, other) is not limiter(settings, run)


@pytest.mark.redis
def test_a_redis_state_opens_the_fleets_quota(redis_url: str) -> None:
    with wiring.open_quota(Settings(state_url=redis_url, max_calls_per_day=5)) as fleet:
        assert isinstance(fleet, RedisQuota)
        assert "max_calls_per_day=5" in repr(fleet)
