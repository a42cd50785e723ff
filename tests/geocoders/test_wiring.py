"""open_geocoder: each provider gets its own options out of Settings (and the run's quota)."""

from __future__ import annotations

import pytest

from etl4all.errors import ConfigError, UnknownSchemeError
from etl4all.geocoders.api import ApiGeocoder
from etl4all.geocoders.base import Geocoder
from etl4all.geocoders.google import GoogleGeocoder
from etl4all.geocoders.nominatim import NominatimGeocoder
from etl4all.geocoders.offline import OfflineGeocoder
from etl4all.quota.memory import MemoryQuota
from etl4all.runners import wiring
from etl4all.settings import Settings

AGENT = "etl4all-tests/1.0 (ops@example.com)"
SHARED = {
    "language": "en",
    "qps": 7.0,
    "concurrency": 3,
    "max_attempts": 2,
    "request_timeout": 4.0,
    "request_connect_timeout": 1.5,
}


def open_geocoder(settings: Settings) -> Geocoder:
    """The geocoder of ``settings``, on an in-process quota of its own."""
    return wiring.open_geocoder(settings, MemoryQuota())


def test_offline_needs_nothing() -> None:
    assert isinstance(open_geocoder(Settings(geocoder="offline")), OfflineGeocoder)


@pytest.mark.parametrize("name", ["google", "nominatim"])
def test_api_geocoders_get_the_shared_options(name: str) -> None:
    settings = Settings(
        geocoder=name,
        google_key="k",
        nominatim_url="http://nominatim.internal:8080",
        user_agent=AGENT,
        **SHARED,  # type: ignore[arg-type]
    )
    geocoder = open_geocoder(settings)
    assert isinstance(geocoder, ApiGeocoder)
    assert geocoder.name == name
    assert (geocoder.qps, geocoder.concurrency) == (7.0, 3)
    assert (geocoder._runner.max_attempts, geocoder._runner.timeout) == (2, 4.0)
    assert geocoder._runner.connect_timeout == 1.5


@pytest.mark.parametrize(("qps", "in_flight"), [(None, 32), (50.0, 32), (400.0, 100), (1e4, 256)])
def test_requests_in_flight_follow_a_raised_qps_unless_given(
    qps: float | None, in_flight: int
) -> None:
    """Issue 18: at 32 in flight a key raised to 10,000 QPS reached 1,600 at 20 ms."""
    settings = Settings(geocoder="google", google_key="k", qps=qps)
    with open_geocoder(settings) as geocoder:
        assert isinstance(geocoder, ApiGeocoder)
        assert geocoder.concurrency == in_flight
    given = Settings(geocoder="google", google_key="k", qps=qps, concurrency=5)
    with open_geocoder(given) as geocoder:
        assert isinstance(geocoder, ApiGeocoder)
        assert geocoder.concurrency == 5


def test_google_gets_its_key_url_and_filters() -> None:
    settings = Settings(
        geocoder="google",
        google_key="k",
        google_url="http://127.0.0.1:9/json",
        language="en",
        result_type="route",
        location_type="ROOFTOP",
    )
    geocoder = open_geocoder(settings)
    assert isinstance(geocoder, GoogleGeocoder)
    query = geocoder.request_url(1.0, 2.0).query
    assert geocoder.endpoint.port == 9
    assert (query["key"], query["language"]) == ("k", "en")
    assert (query["result_type"], query["location_type"]) == ("route", "ROOFTOP")
    with pytest.raises(ConfigError, match="GOOGLE_MAPS_API_KEY"):
        open_geocoder(settings.replace(google_key=None))


def test_nominatim_gets_its_url_and_user_agent() -> None:
    settings = Settings(
        geocoder="nominatim", nominatim_url="http://nominatim.internal", user_agent=AGENT
    )
    geocoder = open_geocoder(settings)
    assert isinstance(geocoder, NominatimGeocoder)
    assert geocoder._runner.headers["User-Agent"] == AGENT
    assert str(geocoder.endpoint) == "http://nominatim.internal/reverse"
    with pytest.raises(ConfigError, match="User-Agent"):
        open_geocoder(Settings(geocoder="nominatim"))


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError, match="nominatim"):
        open_geocoder(Settings(geocoder="bing"))
