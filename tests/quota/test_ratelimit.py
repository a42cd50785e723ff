"""Unit tests of the in-process quota and its QPS limiter (virtual time)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
from collections import deque

import pytest
import virtual_time
from geocoders.fake_api import max_in_window

from etl4all import quota
from etl4all.errors import ConfigError
from etl4all.quota.adaptive import MIN_SHARE, RECOVER_TO, SLOW_DOWN_PAUSE, AdaptiveRate
from etl4all.quota.base import RateReport
from etl4all.quota.memory import MemoryQuota, RateLimiter


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


def endpoint_limiter(shared: MemoryQuota, endpoint: str, qps: float) -> RateLimiter:
    """The limiter ``shared`` hands a Google geocoder of ``endpoint`` at ``qps``."""
    return shared.limiter(provider="google", endpoint=endpoint, secret="k", qps=qps)


def test_the_quota_is_one_limiter_per_endpoint() -> None:
    shared = MemoryQuota()
    a = endpoint_limiter(shared, "http://unit-test.invalid/x", 7)
    assert endpoint_limiter(shared, "http://unit-test.invalid/x", 7) is a
    assert endpoint_limiter(shared, "http://unit-test.invalid/y", 7) is not a
    assert endpoint_limiter(MemoryQuota(), "http://unit-test.invalid/x", 7) is not a


def test_one_endpoint_at_two_rates_is_one_cap_at_the_lower() -> None:
    time = VirtualTime()
    shared = MemoryQuota(clock=time.clock, sleep=time.sleep)
    fast = endpoint_limiter(shared, "http://unit-test.invalid/x", 20)
    slow = endpoint_limiter(shared, "http://unit-test.invalid/x", 10)
    assert slow is fast and fast.qps == 10 and fast.report() == RateReport(10, 10)
    assert endpoint_limiter(shared, "http://unit-test.invalid/x", 40).qps == 10
    starts = []

    async def go() -> None:
        for _ in range(50):
            for limiter in (fast, slow):
                starts.append(await limiter.acquire())

    asyncio.run(go())
    assert max_in_window(starts, 1.0) <= 10


def test_lowering_the_cap_voids_the_slots_reserved_at_the_old_one() -> None:
    limiter = RateLimiter(100, clock=virtual_time.now)
    starts: list[float] = []

    async def start() -> None:
        starts.append(await limiter.acquire())

    async def go() -> None:
        waiting = [asyncio.create_task(start()) for _ in range(30)]
        await asyncio.sleep(0)  # each has reserved its slot, 10 ms apart
        limiter.lower(2)
        await asyncio.gather(*waiting)

    virtual_time.run(go())
    assert len(starts) == 30 and starts[0] == virtual_time.START  # it started at once
    assert min(b - a for a, b in itertools.pairwise(starts)) >= limiter.interval - 1e-9


@pytest.mark.parametrize("url", [None, "memory://", "sqlite:///state.db"])
def test_no_state_url_or_a_local_one_is_the_process_quota(url: str | None) -> None:
    with quota.from_url(url) as shared:
        assert isinstance(shared, MemoryQuota)


def test_a_daily_cap_is_refused_once_a_limiter_is_asked_for() -> None:
    shared = quota.from_url("sqlite:///state.db", max_calls_per_day=10)
    with pytest.raises(ConfigError, match="redis://"):
        endpoint_limiter(shared, "http://unit-test.invalid/x", 7)


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


# -- the adaptive rate (issue 17: a key whose quota is below --qps) ------------------------


def test_a_slow_down_halves_the_rate_once_and_pauses() -> None:
    rate = AdaptiveRate(40)
    assert rate.slowed(started=5.0, now=5.1, retry_after=None) == SLOW_DOWN_PAUSE
    assert (rate.rate, rate.peak, rate.slow_downs) == (20, 40, 1)
    # answers to starts before that slow-down are the old rate's: no second cut...
    assert rate.slowed(started=5.05, now=5.2, retry_after=None) == 0
    # ...but the server's Retry-After is obeyed all the same
    assert rate.slowed(started=5.05, now=5.2, retry_after=3.0) == 3.0
    assert (rate.rate, rate.slow_downs) == (20, 1)
    assert rate.slowed(started=6.5, now=6.6, retry_after=None) == SLOW_DOWN_PAUSE
    assert (rate.rate, rate.peak, rate.slow_downs) == (10, 20, 2)


def test_the_peak_is_the_lowest_rate_answered_over_the_limit() -> None:
    """A loaded client starts fewer requests than its rate allows: its rate creeps past the
    quota before the server says so, and such a cut must not raise the quota found."""
    rate = AdaptiveRate(200)
    rate.slowed(started=0.0, now=0.0, retry_after=None)  # 200 → 100
    rate.slowed(started=1.0, now=1.0, retry_after=None)  # 100 → 50: the peak is 100
    rate.rate = 56.8  # crept up without an answer over the limit
    rate.slowed(started=20.0, now=20.0, retry_after=None)
    assert rate.peak == 56.8 and rate.report().suggested_qps == 56
    rate.rate = 70.0  # further still, on a loaded machine
    rate.slowed(started=40.0, now=40.0, retry_after=None)
    assert rate.peak == 56.8 and rate.report().suggested_qps == 56


def test_clean_answers_raise_the_rate_back_quickly_then_slowly() -> None:
    rate = AdaptiveRate(40)
    rate.slowed(started=0.0, now=0.0, retry_after=None)
    for started in (0.5, 1.5, 1.99):  # during the pause and the warm-up: nothing proven
        rate.clean(started)
    assert rate.rate == 20
    t, reached = 2.0, {}
    while rate.rate < 40:  # answers come at the rate allowed
        rate.clean(t)
        t += 1 / rate.rate
        for share in (RECOVER_TO, 1.0):
            if rate.rate >= share * 40:
                reached.setdefault(share, t - 2.0)
    assert rate.rate == 40  # never above qps
    assert 0.8 < reached[RECOVER_TO] < 1.2  # back to 90 % of the peak in about a second
    assert 4 < reached[1.0] - reached[RECOVER_TO] < 6  # then 5 s to probe the last 10 %


@pytest.mark.parametrize(("qps", "fast", "probe"), [(4.0, 8, 40), (400.0, 100, 900)])
def test_the_climb_takes_enough_answers_at_any_quota(qps: float, fast: int, probe: int) -> None:
    rate = AdaptiveRate(qps)
    rate.slowed(started=0.0, now=0.0, retry_after=None)
    answers = {}
    for n in range(1, 10_000):
        rate.clean(100.0)
        for share in (RECOVER_TO, 1.0):
            if rate.rate >= share * qps - 1e-9:
                answers.setdefault(share, n)
        if rate.rate >= qps:
            break
    assert answers[RECOVER_TO] >= fast
    assert answers[1.0] - answers[RECOVER_TO] >= probe


def test_the_rate_never_goes_below_a_sixteenth_of_qps() -> None:
    rate = AdaptiveRate(40)
    for n in range(20):
        rate.slowed(started=float(n), now=n + 0.5, retry_after=None)
    assert rate.rate == 40 * MIN_SHARE


@pytest.mark.parametrize(
    ("peak", "rate", "suggested"),
    [(10.2, 5.1, 10), (9.97, 8.0, 9), (30.0, 15.0, 30), (1.55, 1.0, 1.5), (0.3, 0.2, 0.3)],
)
def test_the_suggested_qps_is_the_quota_found(peak: float, rate: float, suggested: float) -> None:
    assert RateReport(40, rate, 3, peak).suggested_qps == suggested


def test_no_suggestion_without_a_slow_down_or_once_back_at_qps() -> None:
    assert RateReport(40, 40).suggested_qps is None
    assert RateReport(40, 40, 1, 40).suggested_qps is None  # a slow-down, and back at --qps
    assert RateReport(40, 30, 1, 40).suggested_qps is None  # slowed at --qps itself


def test_a_pause_holds_back_the_requests_already_waiting_for_a_slot() -> None:
    limiter = RateLimiter(10, clock=virtual_time.now)
    starts: list[float] = []

    async def start() -> None:
        starts.append(await limiter.acquire())

    async def go() -> None:
        waiting = [asyncio.create_task(start()) for _ in range(5)]
        await asyncio.sleep(0.15)  # two have started, three hold a slot
        limiter.pause(2.0)
        await asyncio.gather(*waiting)

    virtual_time.run(go())
    assert len([t for t in starts if t < virtual_time.START + 0.15]) == 2
    assert min(t for t in starts[2:]) >= virtual_time.START + 2.15


class QuotaServer:
    """A provider whose key allows ``quota`` requests in any 1-s window (only the accepted
    ones count, as in ``fake_api.FakeApi``); the answer comes ``latency`` after the start."""

    def __init__(self, quota: float) -> None:
        self.quota = quota
        self.accepted: deque[float] = deque()

    def accepts(self, now: float) -> bool:
        while self.accepted and self.accepted[0] <= now - 1.0:
            self.accepted.popleft()
        if len(self.accepted) >= self.quota:
            return False
        self.accepted.append(now)
        return True


def geocode_in_virtual_time(
    qps: float, quota: float, keys: int, *, latency: float = 0.01, concurrency: int = 32
) -> tuple[collections.Counter[str], list[float], RateReport]:
    """``keys`` coordinates through a :class:`RateLimiter` and a :class:`QuotaServer`, with the
    HTTP runner's retries (5 tries, full-jitter backoff from 0.5 s): answers, starts, report."""
    server, rng = QuotaServer(quota), random.Random(17)
    answers: collections.Counter[str] = collections.Counter()
    starts: list[float] = []

    async def go() -> RateReport:
        limiter = RateLimiter(qps, clock=virtual_time.now)
        slots = asyncio.Semaphore(concurrency)
        todo = iter(range(keys))

        async def one() -> None:
            for attempt in range(1, 6):
                async with slots:
                    started = await limiter.acquire()
                    starts.append(started)
                    await asyncio.sleep(latency)
                    accepted = server.accepts(virtual_time.now())
                    await asyncio.sleep(latency)
                if accepted:
                    answers["OK"] += 1
                    limiter.clean(started)
                    return
                answers["OVER_QUERY_LIMIT"] += 1
                limiter.slowed(started, None)
                await asyncio.sleep(rng.uniform(0, 0.5 * 2 ** (attempt - 1)))
            answers["gave up"] += 1

        async def worker() -> None:
            for _ in todo:
                await one()

        await asyncio.gather(*(worker() for _ in range(concurrency * 4)))
        return limiter.report()

    report = virtual_time.run(go())
    return answers, starts, report


@pytest.mark.parametrize(("qps", "keys"), [(40.0, 600), (200.0, 1500)])
def test_a_quota_a_quarter_of_qps_costs_few_over_the_limit_answers(qps: float, keys: int) -> None:
    answers, starts, report = geocode_in_virtual_time(qps, qps / 4, keys)
    requests = sum(answers.values()) - answers["gave up"]
    assert answers["gave up"] == 0 and answers["OK"] == keys
    assert answers["OVER_QUERY_LIMIT"] <= 0.05 * requests
    assert max_in_window(starts, 1.0) <= qps  # on the limiter's own stamps: never above --qps
    assert report.suggested_qps == qps / 4
    assert report.peak is not None and qps / 4 <= report.peak < qps / 4 * 1.05
    # after the first seconds, the starts follow the quota: 10 % over it at most
    settled = [t for t in starts if t > starts[0] + 10]
    assert max_in_window(settled, 1.0) <= qps / 4 * 1.1 + 1


def test_a_key_at_full_quota_never_slows_down() -> None:
    answers, starts, report = geocode_in_virtual_time(40, 40, 400)
    assert answers == {"OK": 400}
    assert report == RateReport(40, 40)
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert achieved >= 0.94 * 40
