"""GoogleGeocoder against the fake Google API on loopback: calls, retries, errors, rate limit."""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from contracts.geocoder import GeocoderContract
from fake_api import INVALID_KEY_MESSAGE, FakeApi, coord, expected_row, max_in_window

from etl4all import frames
from etl4all.errors import (
    ConfigError,
    GeocodeAuthError,
    GeocodeQuotaError,
    GeocodeUnavailableError,
    RateLimitedError,
)
from etl4all.geocoders import from_name
from etl4all.geocoders.base import FAILED_SCHEMA, KEYS_SCHEMA, RESULT_SCHEMA, Geocoder
from etl4all.geocoders.google import GoogleGeocoder
from etl4all.quota.base import RateReport
from etl4all.quota.memory import MemoryQuota, RateLimiter


def make_keys(n: int, lat0: float = -30.0, lon0: float = -51.2) -> pl.DataFrame:
    """``n`` distinct coordinates (``KEYS_SCHEMA``)."""
    return pl.DataFrame(
        {
            "latitude": [round(lat0 - i * 0.000731, 6) for i in range(n)],
            "longitude": [round(lon0 + i * 0.000517, 6) for i in range(n)],
        }
    )


class Sleeps:
    """Backoff sleep that records what it was asked and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def geocoder(api: FakeApi, **changes: Any) -> GoogleGeocoder:
    """A GoogleGeocoder on the fake API; fast rate and no real backoff waits by default."""
    options: dict[str, Any] = {
        "key": api.key,
        "url": api.google_url,
        "qps": 500.0,
        "concurrency": 16,
        "sleep": Sleeps(),
    }
    return GoogleGeocoder(**{**options, **changes})


def short_pauses(qps: float = 500.0) -> RateLimiter:
    """A limiter whose slow-downs pause 50 ms, not a second: for tests whose server answers
    OVER_QUERY_LIMIT at random (it halves the rate all the same)."""
    return RateLimiter(qps, pause=0.05, warm_up=0.05)


class TestGoogleGeocoder(GeocoderContract):
    @pytest.fixture
    def geocoder(self, fake_api: FakeApi) -> Iterator[GoogleGeocoder]:
        with geocoder(fake_api) as google:
            yield google


def rows_by_key(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {coord(r["latitude"], r["longitude"]): r for r in frame.iter_rows(named=True)}


def test_one_call_per_distinct_key_and_the_right_addresses(fake_api: FakeApi) -> None:
    keys = make_keys(120)
    with geocoder(fake_api) as google:
        assert isinstance(google, Geocoder)
        result = google.reverse(keys)
    assert result.calls == 120 == fake_api.calls
    assert result.retries == 0
    assert result.seconds > 0
    assert result.addresses.schema == pl.Schema(RESULT_SCHEMA)
    assert result.failed.schema == pl.Schema(FAILED_SCHEMA)
    assert result.failed.is_empty()
    got = rows_by_key(result.addresses)
    assert len(got) == 120
    for key, row in got.items():
        lat, lon = key.split(",")
        assert {k: row[k] for k in expected_row(lat, lon)} == expected_row(lat, lon)
        assert row["geocoder"] == "google"
        assert (
            abs((row["geocoded_at"] - result.addresses["geocoded_at"].max()).total_seconds()) < 60
        )
    # the fake's Brazilian shapes are all exercised
    assert result.addresses["number"].null_count() > 0
    assert result.addresses["postal_code"].null_count() > 0
    assert set(result.addresses["city"]) >= {"São Paulo", "Colatina"}


def test_request_parameters(fake_api: FakeApi) -> None:
    google = geocoder(
        fake_api, language="pt-BR", result_type="street_address|route", location_type="ROOFTOP"
    )
    google.reverse(pl.DataFrame({"latitude": [-30.04982864], "longitude": [-51.00001]}))
    (request,) = fake_api.requests
    assert request.params == {
        "latlng": "-30.04982864,-51.00001",
        "key": fake_api.key,
        "language": "pt-BR",
        "result_type": "street_address|route",
        "location_type": "ROOFTOP",
    }


def test_built_by_name(fake_api: FakeApi) -> None:
    google = from_name("google", key="k", url=fake_api.google_url, qps=12.0, concurrency=3)
    assert isinstance(google, GoogleGeocoder)
    assert google.name == "google"
    assert google.paid is True
    assert (google.qps, google.concurrency) == (12.0, 3)


def test_no_key_is_refused_at_construction() -> None:
    for key in (None, "", "   "):
        with pytest.raises(ConfigError, match=r"GOOGLE_MAPS_API_KEY.*--google-key"):
            GoogleGeocoder(key=key)


def test_a_bad_url_is_refused_at_construction() -> None:
    for url in ("ftp://maps.example/json", "not a url", "http:///json"):
        with pytest.raises(ConfigError, match="google_url"):
            GoogleGeocoder(key="k", url=url)


def test_empty_keys_make_no_calls(fake_api: FakeApi) -> None:
    result = geocoder(fake_api).reverse(frames.empty(KEYS_SCHEMA))
    assert result.calls == 0 == fake_api.calls
    assert result.addresses.is_empty()
    assert result.addresses.schema == pl.Schema(RESULT_SCHEMA)


def test_zero_results_is_a_final_answer(fake_api: FakeApi) -> None:
    keys = make_keys(5)
    zero = coord(keys["latitude"][2], keys["longitude"][2])
    fake_api.zero_results.add(zero)
    result = geocoder(fake_api).reverse(keys)
    assert result.calls == 5
    assert result.retries == 0
    row = rows_by_key(result.addresses)[zero]
    assert row["geocode_status"] == "ZERO_RESULTS"
    assert all(row[k] is None for k in frames.ADDRESS_FIELDS)
    assert row["geocoder"] == "google"


def test_invalid_request_fails_one_key_and_the_batch_goes_on(fake_api: FakeApi) -> None:
    keys = make_keys(10)
    bad = coord(keys["latitude"][4], keys["longitude"][4])
    fake_api.invalid.add(bad)
    result = geocoder(fake_api).reverse(keys)
    assert result.calls == 10
    assert result.addresses.height == 9
    (failed,) = result.failed.iter_rows(named=True)
    assert coord(failed["latitude"], failed["longitude"]) == bad
    assert failed["reason"] == "invalid_request"
    assert failed["text"].startswith("Invalid request. Invalid 'latlng' parameter")


def test_unknown_error_twice_then_ok_is_exactly_three_calls(fake_api: FakeApi) -> None:
    keys = make_keys(1)
    key = coord(keys["latitude"][0], keys["longitude"][0])
    fake_api.script[key] = ["UNKNOWN_ERROR", "UNKNOWN_ERROR"]
    sleeps = Sleeps()
    result = geocoder(fake_api, sleep=sleeps).reverse(keys)
    assert fake_api.calls == 3 == result.calls
    assert result.retries == 2
    assert rows_by_key(result.addresses)[key]["geocode_status"] == "OK"
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5
    assert 0 <= sleeps.delays[1] <= 1.0


def test_http_503_twice_then_ok_is_exactly_three_calls(fake_api: FakeApi) -> None:
    keys = make_keys(1)
    key = coord(keys["latitude"][0], keys["longitude"][0])
    fake_api.script[key] = [503, 503]
    result = geocoder(fake_api).reverse(keys)
    assert fake_api.calls == 3 == result.calls
    assert result.failed.is_empty()


def test_scripted_transient_faults_all_recover(
    fake_api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    keys = make_keys(100)
    faults: list[list[str | int]] = [
        [500],
        ["OVER_QUERY_LIMIT"],
        [503, "OVER_QUERY_LIMIT"],
        ["NOT_JSON"],
        [429, 500, 503, "UNKNOWN_ERROR"],
    ]
    extra = 0
    for i, (lat, lon) in enumerate(keys.iter_rows()):
        if i % 4 == 0:
            fake_api.script[coord(lat, lon)] = list(faults[i % len(faults)])
            extra += len(faults[i % len(faults)])
    with caplog.at_level(logging.WARNING, logger="etl4all"):
        result = geocoder(fake_api, max_attempts=5, limiter=short_pauses()).reverse(keys)
    assert result.failed.is_empty()
    assert result.addresses.height == 100
    assert (result.addresses["geocode_status"] == "OK").all()
    assert result.calls == fake_api.calls == 100 + extra
    assert result.retries == extra
    assert max(fake_api.calls_for(lat, lon) for lat, lon in keys.iter_rows()) <= 5
    # one WARNING for the batch, not one per retry, with the causes counted
    (summary,) = [r.getMessage() for r in caplog.records if "retries" in r.getMessage()]
    assert summary.startswith(f"google: {extra} retries for 25 of 100 coordinates (")
    assert "HTTP 500" in summary and "rate limited" in summary


def test_random_transient_faults_all_recover(fake_api: FakeApi) -> None:
    fake_api.error_rate = 0.2
    fake_api.error_kinds = (500, 503, "OVER_QUERY_LIMIT", "UNKNOWN_ERROR", 429)
    keys = make_keys(150)
    result = geocoder(fake_api, max_attempts=10, limiter=short_pauses()).reverse(keys)
    assert result.failed.is_empty()
    assert result.addresses.height == 150
    assert result.retries > 0
    assert result.calls == fake_api.calls == 150 + result.retries


def test_a_key_that_keeps_failing_fails_the_batch_and_the_answers_are_kept(
    fake_api: FakeApi,
) -> None:
    keys = make_keys(6)
    lat, lon = keys.row(1)
    fake_api.script[coord(lat, lon)] = [500] * 10
    answered: list[pl.DataFrame] = []
    with pytest.raises(GeocodeUnavailableError) as info:
        geocoder(fake_api, max_attempts=3, concurrency=1).reverse(keys, answered.append)
    assert info.value.retryable  # the batch is retried later, never stored as failed
    assert fake_api.calls_for(lat, lon) == 3
    message = str(info.value)
    assert "google unavailable: gave up on" in message and "after 3 requests" in message
    assert "HTTP 500" in message and fake_api.key not in message
    # the other keys were answered while the failing one waited in backoff: what was paid
    # for was handed over (to be cached) although the batch failed
    got = pl.concat(answered)
    assert got.height == 5 and (lat, lon) not in set(
        got.select("latitude", "longitude").iter_rows()
    )
    assert fake_api.calls == 5 + 3


def test_answers_are_handed_over_as_they_arrive(fake_api: FakeApi) -> None:
    fake_api.latency = 0.05
    keys = make_keys(60)
    seen: list[tuple[int, int]] = []  # (requests the server had seen, rows handed over)
    result = geocoder(fake_api, concurrency=2, qps=1000.0).reverse(
        keys, lambda rows: seen.append((fake_api.calls, rows.height))
    )
    assert result.addresses.height == 60
    assert sum(n for _, n in seen) == 60  # every answer once
    assert len(seen) >= 2 and seen[0][0] < 60  # the first before the last request: not at the end


def test_timeouts_and_dropped_connections_are_retried(fake_api: FakeApi) -> None:
    fake_api.stall_seconds = 1.0
    keys = make_keys(3)
    stalled, dropped, slow = (coord(*keys.row(i)) for i in range(3))
    fake_api.script[stalled] = ["STALL"]
    fake_api.script[dropped] = ["DROP", "DROP"]
    fake_api.script[slow] = ["STALL", "STALL"]
    result = geocoder(fake_api, timeout=0.3, max_attempts=3).reverse(keys)
    # a stall is given up after the timeout and asked again (it would answer after 1 s)
    assert [fake_api.calls_for(*keys.row(i)) for i in range(3)] == [2, 3, 3]
    got = rows_by_key(result.addresses)
    assert {got[k]["geocode_status"] for k in (stalled, dropped, slow)} == {"OK"}
    assert result.failed.is_empty()


def test_a_key_that_keeps_timing_out_fails_the_batch(fake_api: FakeApi) -> None:
    fake_api.stall_seconds = 1.0
    keys = make_keys(2)
    fake_api.script[coord(*keys.row(0))] = ["STALL"] * 3
    with pytest.raises(GeocodeUnavailableError, match="timed out"):
        geocoder(fake_api, timeout=0.3, max_attempts=3).reverse(keys)
    assert fake_api.calls_for(*keys.row(0)) == 3  # each try given up after its timeout


def test_a_key_kept_over_the_rate_limit_fails_the_batch_and_says_lower_qps(
    fake_api: FakeApi,
) -> None:
    keys = make_keys(2)
    fake_api.script[coord(*keys.row(0))] = ["OVER_QUERY_LIMIT"] * 3
    limiter = short_pauses()
    with pytest.raises(RateLimitedError) as info:
        geocoder(fake_api, max_attempts=3, concurrency=1, limiter=limiter).reverse(keys)
    assert info.value.retryable
    message = str(info.value)
    assert "google kept answering over the rate limit: gave up on" in message
    assert "after 3 requests" in message and fake_api.key not in message
    # each answer came after the pause of the one before: three slow-downs, 500 → 62.5/s
    assert limiter.report() == RateReport(500, 62.5, 3, 125)
    assert message.endswith(
        "the rate came down to 62.5 requests/s: the key's quota is below --qps 500? set --qps 125"
    )


def test_wrong_key_stops_the_batch_fast_and_never_shows_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "AIzaSyWRONG-key-0123456789abcdef"
    with FakeApi(latency=0.02) as api:
        google = geocoder(api, key=secret, concurrency=8, qps=200.0)
        caplog.set_level(logging.DEBUG)
        with pytest.raises(GeocodeAuthError) as info:
            google.reverse(make_keys(500))
        calls = api.calls  # reverse closed its session: nothing more is sent
    assert calls <= 8 + 2  # only the requests already in flight, of 500
    message = str(info.value)
    assert "REQUEST_DENIED" in message
    assert INVALID_KEY_MESSAGE in message
    assert "GOOGLE_MAPS_API_KEY" in message
    texts = [
        message,
        repr(info.value),
        repr(google),
        "".join(traceback.format_exception(info.value)),
    ]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.args) for r in caplog.records]
    assert any("key=***" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    for text in texts:
        assert secret not in text


def test_the_key_is_never_logged_during_retries(
    fake_api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = make_keys(3)
    fake_api.script[coord(*keys.row(0))] = [500, "NOT_JSON", "DROP", 429]
    fake_api.script[coord(*keys.row(1))] = [500] * 9
    with pytest.raises(GeocodeUnavailableError) as info:
        geocoder(fake_api, max_attempts=4).reverse(keys)
    assert caplog.records
    assert fake_api.key
    for record in caplog.records:
        assert fake_api.key not in record.getMessage()
    assert fake_api.key not in str(info.value)


def test_request_denied_on_call_three_stops_within_a_second(fake_api: FakeApi) -> None:
    fake_api.latency = 0.01
    fake_api.deny_from_call = 3
    with pytest.raises(GeocodeAuthError, match="REQUEST_DENIED"):
        geocoder(fake_api, concurrency=1, qps=50.0).reverse(make_keys(50))
    assert fake_api.calls == 3  # one at a time: none after the denial, of 50


@pytest.mark.parametrize("over_daily_limit", [False, True])
def test_daily_quota_stops_the_batch(fake_api: FakeApi, over_daily_limit: bool) -> None:
    fake_api.daily_quota = 5
    fake_api.over_daily_limit = over_daily_limit
    with pytest.raises(GeocodeQuotaError) as info:
        geocoder(fake_api, concurrency=2).reverse(make_keys(40))
    status = "OVER_DAILY_LIMIT" if over_daily_limit else "OVER_QUERY_LIMIT"
    assert status in str(info.value)
    assert "daily request quota" in str(info.value)
    assert fake_api.calls <= 5 + 2 + 1


class Stamped(RateLimiter):
    """A limiter that keeps the start stamps it grants (its own clock, not the server's:
    a loaded machine delays requests in transit, never the limiter's schedule)."""

    def __init__(self, qps: float) -> None:
        super().__init__(qps)
        self.starts: list[float] = []

    async def acquire(self) -> float:
        started = await super().acquire()
        self.starts.append(started)
        return started


def test_qps_cap_holds_in_every_one_second_window(fake_api: FakeApi) -> None:
    fake_api.latency = 0.01
    limiter = Stamped(20)
    result = geocoder(fake_api, qps=20.0, concurrency=8, limiter=limiter).reverse(make_keys(60))
    assert max_in_window(limiter.starts, 1.0) <= 20
    assert result.calls == 60 == len(limiter.starts)
    assert result.failed.is_empty()


def test_one_cap_shared_by_threads_and_geocoders(fake_api: FakeApi) -> None:
    limiter = Stamped(20)
    results = []

    def run(offset: float) -> None:
        google = geocoder(fake_api, qps=20.0, concurrency=4, limiter=limiter)
        results.append(google.reverse(make_keys(30, lat0=-20.0 - offset)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(r.calls for r in results) == 60 == fake_api.calls == len(limiter.starts)
    assert max_in_window(limiter.starts, 1.0) <= 20


def test_default_limiter_is_shared_per_endpoint(fake_api: FakeApi) -> None:
    url = fake_api.google_url + "?x=1"
    quota = MemoryQuota()
    a = GoogleGeocoder(key="k", url=url, qps=33.0, quota=quota)
    b = GoogleGeocoder(key="k", url=url, qps=33.0, quota=quota)
    assert a._runner.limiter is b._runner.limiter
    assert a.qps == 33.0
    assert GoogleGeocoder(key="k", url=url).qps == 40.0


def test_reverse_from_inside_a_running_event_loop(fake_api: FakeApi) -> None:
    google = geocoder(fake_api)

    async def inside() -> int:
        return google.reverse(make_keys(3)).addresses.height

    assert asyncio.run(inside()) == 3
