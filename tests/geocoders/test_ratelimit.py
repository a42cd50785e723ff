"""Unit tests of the QPS limiter (virtual time)."""

from __future__ import annotations

import asyncio
import random

import pytest
from fake_api import max_in_window

from etl4all.geocoders.ratelimit import RateLimiter, shared_limiter


class VirtualTime:
    """A clock whose sleep advances it, optionally overshooting like a busy event loop."""

    def __init__(self, overshoot: float = 0.0, seed: int = 7) -> None:
        self.now = 1000.0
        self.overshoot = overshoot
        self._random = random.Random(seed)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + self._random.uniform(0, self.overshoot)


@pytest.mark.parametrize("qps", [1, 2.5, 20, 200])
@pytest.mark.parametrize("overshoot", [0.0, 0.02])
def test_limiter_never_exceeds_qps_in_any_window(qps: float, overshoot: float) -> None:
    time = VirtualTime(overshoot)
    limiter = RateLimiter(qps, clock=time.clock, sleep=time.sleep)
    starts = []

    async def go() -> None:
        for _ in range(int(qps * 10) + 5):
            await limiter.acquire()
            starts.append(time.now)

    asyncio.run(go())
    assert max_in_window(starts, 1.0) <= qps
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    if overshoot == 0:
        assert achieved >= 0.94 * min(qps, max(1, int(qps)))


def test_limiter_allows_fractional_rates() -> None:
    time = VirtualTime()
    limiter = RateLimiter(0.5, clock=time.clock, sleep=time.sleep)
    starts = []

    async def go() -> None:
        for _ in range(3):
            await limiter.acquire()
            starts.append(time.now)

    asyncio.run(go())
    assert starts[1] - starts[0] >= 2.0
    assert starts[2] - starts[1] >= 2.0


def test_limiter_first_request_is_not_delayed() -> None:
    time = VirtualTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    asyncio.run(limiter.acquire())
    assert time.now == 1000.0


def test_limiter_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_shared_limiter_is_one_per_endpoint_and_rate() -> None:
    a = shared_limiter("http://unit-test.invalid/x", 7)
    assert shared_limiter("http://unit-test.invalid/x", 7) is a
    assert shared_limiter("http://unit-test.invalid/y", 7) is not a


def test_pause_holds_back_every_request_after_a_slow_down() -> None:
    time = VirtualTime()
    limiter = RateLimiter(100, clock=time.clock, sleep=time.sleep)
    starts = []

    async def go() -> None:
        await limiter.acquire()
        limiter.pause(2.0)
        for _ in range(3):
            await limiter.acquire()
            starts.append(time.now)

    asyncio.run(go())
    assert starts[0] >= 1002.0
    assert starts[-1] - starts[0] < 0.1  # then the normal rate again
