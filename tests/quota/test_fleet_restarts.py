"""The fleet limiter against a Redis of its own that restarts and forgets its scripts.

Issue 17: after a Redis restart or a ``SCRIPT FLUSH`` the transformers logged
``NoScriptError`` for ever and made no call. Here the server is a private ``redis-server``
(:mod:`private_redis`), never the shared one: it is stopped, started again empty, and its
script cache flushed under the limiter, and the starts resume at the limiter's first ask once
Redis is back (in virtual time). The outage under a running geocoder lasts half a second.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_client import coordinates
from geocoders.fake_api import FakeApi
from private_redis import PrivateRedis
from virtual_clock import VirtualClock

from etl4all import quota
from etl4all.geocoders.google import GoogleGeocoder
from etl4all.quota import adaptive
from etl4all.quota import redis as fleet
from etl4all.quota.adaptive import AdaptiveRate
from etl4all.redis_client import connect

pytestmark = pytest.mark.redis

DOWN = 0.5
"""Seconds the outage under a running geocoder lasts."""
OUTAGE_ASKS = 4
"""The limiter's asks, in virtual time, while its Redis is down."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path) as private:
        yield private


def limiter(
    server: PrivateRedis,
    qps: float = 100,
    max_calls_per_day: int | None = None,
    warm_up: float = adaptive.WARM_UP,
    **seams: Any,
) -> fleet.FleetLimiter:
    """A fleet limiter on the private server, with the client the factory gives it."""
    client, prefix = connect(server.url(f"t{time.monotonic_ns()}:"))
    return fleet.FleetLimiter(
        client=client,
        prefix=prefix,
        scope="google:test",
        qps=qps,
        max_calls_per_day=max_calls_per_day,
        warm_up=warm_up,
        **seams,
    )


def starts(fleet_limiter: fleet.FleetLimiter, count: int) -> list[float]:
    """The stamps of ``count`` request starts."""

    async def go() -> list[float]:
        return [await fleet_limiter.acquire() for _ in range(count)]

    return asyncio.run(go())


def test_a_script_flush_is_not_an_outage(server: PrivateRedis) -> None:
    shared = limiter(server)
    first = starts(shared, 3)
    with server.client() as admin:
        admin.script_flush()
        assert starts(shared, 3)[0] > first[-1]  # the grant script loaded itself again
        assert shared.slowed(first[-1] + 1, None)  # and so does the slow-down script
        assert shared.report().rate == 50
        shas = [hashlib.sha1(script.encode()).hexdigest() for script in (fleet.GRANT, fleet.CUT)]
        assert admin.script_exists(*shas) == [True, True]


def test_a_restart_stops_the_starts_and_they_resume_once_redis_is_back(
    server: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    waits: list[float] = []  # of the outage
    after: list[float] = []  # once Redis is back

    async def sleep(seconds: float) -> None:  # virtual: Redis comes back after 4 asks
        clock.sleep(seconds)
        if server.running():
            (after if waits else []).append(seconds)
            return
        waits.append(seconds)
        if len(waits) == OUTAGE_ASKS:
            server.start()  # back, and empty

    shared = limiter(server, max_calls_per_day=1000, clock=clock.monotonic, sleep=sleep)
    starts(shared, 5)
    server.stop()
    caplog.set_level(logging.INFO, logger="etl4all")
    starts(shared, 1)
    # while Redis was down the limiter asked again every OUTAGE_RETRY, and its first ask
    # once Redis was back took the start
    assert waits == [fleet.OUTAGE_RETRY] * OUTAGE_ASKS
    assert sum(after) < fleet.OUTAGE_RETRY
    assert "Redis failed (ConnectionError)" in caplog.text
    assert "Redis answers again" in caplog.text
    with server.client() as admin:  # what Redis forgot is rebuilt: the slots, the day count
        (rate,) = admin.keys("*quota:google:test:rate")
        assert admin.hget(rate, "next")
        (day,) = admin.keys("*quota:google:test:calls:*")
        assert admin.hget(day, "total") == "6"
    assert shared.calls_today() == 6


def test_the_rate_rules_in_redis_are_those_of_the_process(server: PrivateRedis) -> None:
    shared = limiter(server, qps=40, warm_up=0.0)
    twin = AdaptiveRate(40, warm_up=0.0)
    (told,) = starts(shared, 1)
    assert shared.slowed(told, retry_after=0.001)  # a pause of 1 ms, not a second
    assert not shared.slowed(told, retry_after=None)  # that rate is cut already
    twin.slowed(1.0, 1.0, 0.001)
    assert shared.report() == twin.report()
    assert shared.report().rate == 20 and shared.report().peak == 40
    answered = starts(shared, 12)  # 50 ms apart: the fleet's rate is 20/s now
    assert all(b - a >= 0.049 for a, b in itertools.pairwise(answered))
    for stamp in answered:
        shared.clean(stamp)
        twin.clean(2.0)
    starts(shared, 1)  # the clean answers go to Redis with the next start
    assert shared.report().rate == pytest.approx(twin.report().rate)
    assert 20 < twin.report().rate < 40
    (late,) = starts(shared, 1)
    assert shared.slowed(late, retry_after=0.001)  # a second cut, at 20 < rate < 40
    peak = shared.report().peak
    assert peak is not None and peak < 40
    with server.client() as admin:  # the rate crept past that peak, unanswered
        (rate,) = admin.keys("*quota:google:test:rate")
        admin.hset(rate, "rate", peak + 5)
    (later,) = starts(shared, 1)
    assert shared.slowed(later, retry_after=0.001)
    assert shared.report().peak == peak  # the lowest rate answered over the limit


def test_geocoding_goes_on_through_a_script_flush_and_a_restart(server: PrivateRedis) -> None:
    keys = coordinates(0, 240)
    with FakeApi() as api, quota.from_url(server.url()) as shared:
        google = GoogleGeocoder(
            key=api.key, url=api.google_url, qps=100.0, concurrency=8, quota=shared
        )
        results: list[int] = []
        run = threading.Thread(target=lambda: results.append(google.reverse(keys).calls))
        run.start()
        wait_for(lambda: api.calls >= 40)
        with server.client() as admin:
            admin.script_flush()
        wait_for(lambda: api.calls >= 120)
        server.stop()
        time.sleep(DOWN)  # the outage itself (how soon starts resume: the test above)
        server.start()
        run.join(30)
        assert not run.is_alive()
    assert results == [240]  # every key answered once, nothing failed
    assert api.calls == 240


def wait_for(condition: object, timeout: float = 20) -> None:
    """Poll ``condition`` (a callable) until it is true."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
