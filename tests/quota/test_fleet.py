"""The fleet's shared quota: several processes, one QPS cap and one pause, through Redis.

Each member is a separate process (``fleet_client.py``) against the fake Google server of this
process, which records the arrival time of every request.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from fleet_client import coordinates
from geocoders.fake_api import FakeApi, coord, max_in_window

from etl4all import quota
from etl4all.errors import ConfigError
from etl4all.geocoders.google import GoogleGeocoder
from etl4all.quota.memory import RateLimiter
from etl4all.quota.redis import FleetLimiter, RedisQuota
from etl4all.redis_client import connect

CLIENT = Path(__file__).with_name("fleet_client.py")
MEMBERS = 3
EACH = 50
QPS = 40


def args(member: int) -> list[str]:
    """The rate and the coordinates of one member of the fleet."""
    return [str(QPS), str(member * EACH), str(EACH)]


@pytest.mark.redis
@pytest.mark.slow
def test_processes_share_one_cap_and_one_pause(redis_url: str) -> None:
    # the first member is told to slow down on its 11th call: early, while every member has
    # work left on both sides of the pause however unevenly a loaded machine starts them
    told = coordinates(10, 1).row(0)
    with FakeApi() as api:
        api.script[coord(*told)] = ["OVER_QUERY_LIMIT"]
        members = [
            subprocess.Popen(
                [sys.executable, str(CLIENT), api.google_url, str(api.key), redis_url, *args(i)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(MEMBERS)
        ]
        for member in members:  # all built: start them together
            assert member.stdout is not None
            assert "ready\n" in iter(member.stdout.readline, "")
        for member in members:
            assert member.stdin is not None
            member.stdin.write("go\n")
            member.stdin.flush()
        outputs = [member.communicate(timeout=60)[0] for member in members]
        requests = list(api.requests)
    for member, out in zip(members, outputs, strict=True):
        assert member.returncode == 0, out
        assert f"geocoded {EACH}" in out
    assert len(requests) == MEMBERS * EACH + 1  # one retry of the coordinate told to wait
    # on the stamps Redis gave the starts: the server's arrival times move with the load
    stamps = [
        [float(stamp) for stamp in line.split()[1:]]
        for out in outputs
        for line in out.splitlines()
        if line.startswith("starts ")
    ]
    starts = sorted(itertools.chain.from_iterable(stamps))
    assert len(starts) == len(requests)
    # never more than the cap in any 1-second window, all members together
    assert max_in_window(starts, 1.0) <= QPS
    # the pause: after the OVER_QUERY_LIMIT no member starts a request for about a second
    assert [r.answer for r in requests].count("OVER_QUERY_LIMIT") == 1
    gap, resumed = max((b - a, b) for a, b in itertools.pairwise(starts))
    assert gap >= 0.8
    for mine in stamps:  # every member was running on both sides of the pause
        assert min(mine) < resumed - gap and max(mine) >= resumed
    # the fleet's keys in Redis never hold the API key in clear
    prefix = parse_qs(urlsplit(redis_url).query)["prefix"][0]
    keys = list(redis.Redis.from_url(redis_url.split("?")[0]).scan_iter(match=f"{prefix}quota:*"))
    assert keys and not [k for k in keys if str(api.key).encode() in k]


def test_a_daily_cap_needs_a_redis_state() -> None:
    local = quota.from_url("sqlite:///state.db", max_calls_per_day=10)
    with pytest.raises(ConfigError, match="redis://"):
        GoogleGeocoder(key="k", quota=local, qps=10.0)


@pytest.mark.redis
def test_a_redis_state_is_the_fleets_quota_on_a_client_that_closes(redis_url: str) -> None:
    with quota.from_url(redis_url, max_calls_per_day=10) as fleet:
        assert isinstance(fleet, RedisQuota)
        google = GoogleGeocoder(key="k", url="http://127.0.0.1:9/json", qps=10.0, quota=fleet)
        limiter = google._runner.limiter
        assert isinstance(limiter, FleetLimiter) and "max_calls_per_day=10" in repr(limiter)
        assert limiter.calls_today() == 0  # a connection to Redis is open now
        pool = fleet._client.connection_pool
        assert [c for c in pool._available_connections if c._sock is not None]
    assert not [c for c in pool._available_connections if c._sock is not None]


@pytest.mark.redis
def test_the_fleets_starts_keep_to_the_cap_and_to_a_lowered_rate(redis_url: str) -> None:
    """Three members (each its own client, as three processes), checked on the stamps Redis
    gave their starts: at most ``burst`` per window and a tenth of it per tenth of a window,
    then, after one member's slow-down, the halved rate for all."""
    members = [member_limiter(redis_url) for _ in range(3)]
    cap = RateLimiter(100)  # the margins the fleet keeps too
    burst, window = cap.burst, cap.window
    stamps: list[list[float]] = [[] for _ in members]

    def run(i: int, count: int) -> None:
        async def go() -> None:
            for _ in range(count):
                stamps[i].append(await members[i].acquire())

        asyncio.run(go())

    together(run, 60)
    before = sorted(t for mine in stamps for t in mine)
    assert max_in_window(before, window) <= burst == 98
    assert max_in_window(before, window / 10) <= 10
    assert members[1].slowed(before[-1], retry_after=0.01)  # a pause of 10 ms, then 50/s
    for mine in stamps:
        mine.clear()
    together(run, 10)
    after = sorted(t for mine in stamps for t in mine)
    assert min(b - a for a, b in itertools.pairwise(after)) >= 1 / 50 - 1e-6
    assert all(member.report().rate == 50 for member in members)


def member_limiter(state_url: str) -> FleetLimiter:
    """A fleet limiter with its own Redis client, as another process would have."""
    client, prefix = connect(state_url)
    return FleetLimiter(client=client, prefix=prefix, scope="google:members", qps=100)


def together(run: Callable[[int, int], None], count: int) -> None:
    """``run(i, count)`` in one thread per member, all at once."""
    threads = [threading.Thread(target=run, args=(i, count)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
