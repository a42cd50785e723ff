"""NominatimGeocoder: usage-policy guards, and requests against the fake server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from contracts.geocoder import GeocoderContract
from fake_api import FakeApi, coord, expected_row, max_in_window

from etl4all import __version__
from etl4all.errors import ConfigError, GeocodeAuthError
from etl4all.geocoders import from_name, nominatim
from etl4all.geocoders.base import Geocoder
from etl4all.geocoders.nominatim import NominatimGeocoder

AGENT = "etl4all-tests/1.0 (ops@example.com)"


def make_keys(n: int) -> pl.DataFrame:
    """``n`` distinct coordinates."""
    return pl.DataFrame(
        {
            "latitude": [round(-23.55 - i * 0.00113, 6) for i in range(n)],
            "longitude": [round(-46.63 + i * 0.00071, 6) for i in range(n)],
        }
    )


async def no_wait(seconds: float) -> None:
    """Backoff sleep that does not wait."""
    await asyncio.sleep(0)


def geocoder(api: FakeApi, **changes: Any) -> NominatimGeocoder:
    """A NominatimGeocoder on the fake server (a self-hosted server as far as it knows)."""
    options: dict[str, Any] = {
        "url": api.nominatim_url,
        "user_agent": AGENT,
        "qps": 500.0,
        "sleep": no_wait,
    }
    return NominatimGeocoder(**{**options, **changes})


class TestNominatimGeocoder(GeocoderContract):
    @pytest.fixture
    def geocoder(self, fake_api: FakeApi) -> Iterator[NominatimGeocoder]:
        with geocoder(fake_api) as nominatim_geocoder:
            yield nominatim_geocoder


# -- the public server's usage policy, checked at construction (no network) ------------


@pytest.mark.parametrize("agent", [None, "", "  ", "python-requests/2.32", "aiohttp/3.9", "curl/8"])
def test_public_server_needs_an_identifying_user_agent(agent: str | None) -> None:
    with pytest.raises(ConfigError, match="User-Agent"):
        NominatimGeocoder(user_agent=agent)


def test_public_server_is_capped_at_one_request_per_second_one_at_a_time() -> None:
    url = "https://nominatim.openstreetmap.org/"
    geo = from_name("nominatim", url=url, user_agent=AGENT, qps=50.0, concurrency=32)
    assert isinstance(geo, NominatimGeocoder)
    assert isinstance(geo, Geocoder)
    assert geo.public
    assert geo.qps == 1.0
    assert geo.concurrency == 1
    slower = NominatimGeocoder(url=url, user_agent=AGENT, qps=0.5)
    assert slower.qps == 0.5


def test_self_hosted_server_uses_the_options() -> None:
    url = "http://nominatim.internal:8080"
    geo = NominatimGeocoder(url=url, concurrency=8)
    assert not geo.public
    assert geo.qps == nominatim.DEFAULT_QPS
    assert geo.concurrency == 8
    assert geo._runner.headers["User-Agent"] == f"etl4all/{__version__}"
    assert NominatimGeocoder(url=url, qps=7.0).qps == 7.0


def test_a_bad_url_is_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="nominatim_url"):
        NominatimGeocoder(url="nominatim.internal", user_agent=AGENT)


# -- against the fake server ----------------------------------------------------------


def test_addresses_request_and_user_agent(fake_api: FakeApi) -> None:
    keys = make_keys(40)
    with geocoder(fake_api, language="pt-BR") as geo:
        result = geo.reverse(keys)
    assert result.calls == 40 == fake_api.calls
    assert result.failed.is_empty()
    for row in result.addresses.iter_rows(named=True):
        lat, lon = row["latitude"], row["longitude"]
        expected = expected_row(lat, lon, "nominatim")
        assert {k: row[k] for k in expected} == expected
        assert row["geocoder"] == "nominatim"
        assert row["place_id"].startswith("way/")
    request = fake_api.requests[0]
    assert request.api == "nominatim"
    assert request.headers["User-Agent"] == AGENT
    assert request.params["format"] == "jsonv2"
    assert request.params["addressdetails"] == "1"
    assert request.params["accept-language"] == "pt-BR"
    assert coord(request.params["lat"], request.params["lon"]) in {
        coord(lat, lon) for lat, lon in keys.iter_rows()
    }


def test_unable_to_geocode_is_zero_results(fake_api: FakeApi) -> None:
    keys = make_keys(3)
    fake_api.zero_results.add(coord(*keys.row(1)))
    result = NominatimGeocoder(url=fake_api.nominatim_url, user_agent=AGENT).reverse(keys)
    assert result.calls == 3
    statuses = dict(
        zip(result.addresses["latitude"], result.addresses["geocode_status"], strict=True)
    )
    assert statuses[keys.row(1)[0]] == "ZERO_RESULTS"
    assert result.addresses.filter(pl.col("geocode_status") == "ZERO_RESULTS")[
        "city"
    ].to_list() == [None]


def test_bad_request_fails_one_key(fake_api: FakeApi) -> None:
    keys = make_keys(3)
    fake_api.invalid.add(coord(*keys.row(0)))
    result = geocoder(fake_api).reverse(keys)
    assert result.addresses.height == 2
    assert result.failed["reason"].to_list() == ["invalid_request"]


def test_429_and_5xx_are_retried(fake_api: FakeApi) -> None:
    keys = make_keys(4)
    fake_api.script[coord(*keys.row(0))] = ["OVER_QUERY_LIMIT", 500]
    fake_api.script[coord(*keys.row(3))] = [503]
    result = geocoder(fake_api).reverse(keys)
    assert result.failed.is_empty()
    assert result.calls == 4 + 3 == fake_api.calls
    assert result.retries == 3
    assert fake_api.answers()["OVER_QUERY_LIMIT"] == 1


def test_403_means_blocked(fake_api: FakeApi) -> None:
    fake_api.deny_from_call = 1
    with pytest.raises(GeocodeAuthError, match="User-Agent"):
        geocoder(fake_api, concurrency=1).reverse(make_keys(10))
    assert fake_api.calls == 1


def test_public_policy_on_the_wire(fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat the fake as the public server: ≤ 1 request/s, one at a time, whatever settings say."""
    monkeypatch.setattr(nominatim, "PUBLIC_HOSTS", frozenset({"127.0.0.1"}))
    fake_api.latency = 0.05
    geo = geocoder(fake_api, qps=100.0, concurrency=16)
    assert geo.public
    limiter = geo._runner.limiter
    granted, starts = limiter.acquire, list[float]()

    async def acquire() -> float:
        starts.append(await granted())
        return starts[-1]

    monkeypatch.setattr(limiter, "acquire", acquire)
    result = geo.reverse(make_keys(3))
    # on the stamps the limiter granted: a loaded machine delays requests in transit, never
    # the limiter's schedule
    assert starts[-1] - starts[0] >= 2.0
    assert result.calls == 3 == len(starts)
    assert max_in_window(starts, 1.0) <= 1
    assert all(r.headers["User-Agent"] == AGENT for r in fake_api.requests)
