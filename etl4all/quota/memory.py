"""The in-process quota: a hard cap at ``qps`` and an adaptive rate below it, per endpoint.

:class:`MemoryQuota` (no state URL, ``sqlite://``, ``memory://``) hands every geocoder of a
run that calls the same endpoint one :class:`RateLimiter`, so several consumers or stages in
a process never add up to more than ``qps``: one endpoint is one cap, at the lowest rate any
of them asked for. The limiter never lets more than ``qps`` requests start in any 1-second
window (keeping a small safety margin, see the class) and spaces them evenly instead of
letting them out in bursts. aiolimiter is not used because an ``AsyncLimiter`` is bound to
one event loop, and its leaky bucket both allows an initial burst and loses capacity when the
loop wakes up late. The rate follows the real quota (:mod:`etl4all.quota.adaptive`).

Timestamps are those of the limiter's clock (``time.monotonic`` here, injectable: the tests
run in virtual time); :meth:`RateLimiter.acquire` returns the one of each start, and the HTTP
runner hands it back with the answer.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque

from etl4all.closing import Closing
from etl4all.errors import ConfigError
from etl4all.quota.adaptive import SLOW_DOWN_PAUSE, WARM_UP, AdaptiveRate
from etl4all.quota.base import Clock, RateReport, Sleep

HORIZON = 0.25
"""Seconds ahead a request may reserve its slot (two slots at least). Further ones ask again
later: slots reserved long ahead would keep the old spacing while the rate rises."""


class RateLimiter:
    """At most ``qps`` request starts in any 1-second window, evenly spaced, at the adaptive
    rate (:class:`~etl4all.quota.adaptive.AdaptiveRate`); thread-safe.

    Each :meth:`acquire` first reserves the next free slot (so the schedule does not drift
    when the event loop wakes up late), sleeps until it, and then checks the real start times
    of the last requests (a sliding window), so a late wake-up can never squeeze one request
    too many into a window. A slot is reserved at most :data:`HORIZON` ahead; a pause or a
    slow-down voids the slots reserved before it.

    Requests started exactly ``1/qps`` apart do not arrive exactly ``1/qps`` apart at the
    server (connection set-up, network, event-loop and garbage-collector pauses), and the
    server's count is the one that matters. So the limiter keeps two safety margins: the
    window is ``slack`` seconds longer than 1 s, and at high rates ``floor(qps * headroom)``
    requests of each window are left unused (none below 40 QPS). At 200 QPS the cap is
    195 requests per 1.025 s (95 % of ``qps``); at 40 QPS, 39 per 1.025 s; at 1 QPS, 1 per
    1.025 s. Below ``qps`` (after a slow-down) starts are ``1/rate`` apart.

    Args:
        qps: requests per second (fractions allowed: 0.5 means one every 2 s).
        slack: seconds added to the 1-s window.
        headroom: fraction of ``qps`` left unused in every window (rounded down).
        pause: seconds no request starts after a slow-down (:data:`SLOW_DOWN_PAUSE`).
        warm_up: seconds after that pause whose answers do not raise the rate
            (:data:`WARM_UP`).
        clock: monotonic clock, injectable for tests.
        sleep: async sleep, injectable for tests.
    """

    def __init__(
        self,
        qps: float,
        *,
        slack: float = 0.025,
        headroom: float = 0.025,
        pause: float = SLOW_DOWN_PAUSE,
        warm_up: float = WARM_UP,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._slack = slack
        self._headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = -math.inf
        self._last = -math.inf
        self._resume_at = -math.inf
        self._epoch = 0
        """Bumped by a pause or a slow-down: the slots reserved before are void."""
        self._starts: deque[float] = deque()
        self._adaptive = AdaptiveRate(qps, pause=pause, warm_up=warm_up)
        self._cap(qps)

    def __repr__(self) -> str:
        return f"RateLimiter(qps={self.qps})"

    @property
    def burst(self) -> int:
        """Requests allowed to start in one :attr:`window`."""
        return self._burst

    @property
    def window(self) -> float:
        """Seconds of the sliding window (1 s plus the slack, longer below 1 QPS)."""
        return self._window

    @property
    def interval(self) -> float:
        """Seconds between two starts at ``qps`` (the window shared by its burst)."""
        return self._interval

    def report(self) -> RateReport:
        """Where the adaptive rate stands."""
        with self._lock:
            return self._adaptive.report()

    def lower(self, qps: float) -> None:
        """Cap at ``qps`` from now on if that is below the cap (another geocoder of the
        endpoint asked for less); the slots reserved before are void."""
        with self._lock:
            if qps < self.qps:
                self._cap(qps)
                self._adaptive.lower(qps)
                self._hold(self._clock())

    def pause(self, seconds: float) -> None:
        """Start no request for ``seconds``: every coroutine and thread of the process backs
        off together, those already waiting for a slot too."""
        with self._lock:
            self._hold(self._clock() + seconds)

    def slowed(self, started: float, retry_after: float | None) -> bool:
        """An OVER_QUERY_LIMIT or HTTP 429 answered the start at ``started``: halve the rate
        and pause (once per slow-down), or pause ``retry_after`` as the server asks."""
        with self._lock:
            now = self._clock()
            cuts = self._adaptive.slow_downs
            pause = self._adaptive.slowed(started, now, retry_after)
            if pause > 0:
                self._hold(now + pause)
            return self._adaptive.slow_downs > cuts

    def clean(self, started: float) -> None:
        """A clean answer to the start at ``started``: the rate creeps back up."""
        with self._lock:
            self._adaptive.clean(started)

    async def acquire(self) -> float:
        """Wait until one more request may start, and count it as started; the start's time
        on the limiter's clock."""
        with self._lock:
            delay, epoch = self._reserve(self._clock())
        while True:
            if delay > 0:
                await self._sleep(delay)
            with self._lock:
                now = self._clock()
                if epoch != self._epoch:  # no slot yet, or paused or slowed down meanwhile
                    delay, epoch = self._reserve(now)
                    continue
                # one expression for both the test and the wait: no float ping-pong
                delay = self._starts[0] + self._window - now if self._starts else 0.0
                if len(self._starts) < self._burst or delay <= 0:
                    self._starts.append(now)
                    self._last = now
                    return now

    def _spacing(self) -> float:
        return max(self._interval, 1 / self._adaptive.rate)

    def _reserve(self, now: float) -> tuple[float, int | None]:
        """The next free slot: its delay from ``now`` and the epoch it belongs to; or, when
        it is further than :data:`HORIZON` ahead, the time to ask again and no epoch."""
        spacing = self._spacing()
        slot = max(now, self._next_slot)
        horizon = max(HORIZON, 2 * spacing)
        if slot - now > horizon:
            return horizon, None
        self._next_slot = slot + spacing
        return slot - now, self._epoch

    def _cap(self, qps: float) -> None:
        """The cap and its margins at ``qps``; the last starts are kept (those of a window)."""
        self.qps = qps
        whole = max(1, math.floor(qps))
        self._burst = max(1, whole - math.floor(qps * self._headroom))
        self._window = max(1.0, whole / qps) + self._slack
        self._interval = self._window / self._burst
        self._starts = deque(self._starts, maxlen=self._burst)

    def _hold(self, until: float) -> None:
        """No start before ``until`` (nor before an earlier, longer pause ends); the slots
        reserved so far are void."""
        self._resume_at = max(self._resume_at, until)
        self._next_slot = max(self._resume_at, self._last + self._spacing())
        self._epoch += 1


class MemoryQuota(Closing):
    """The quota of this process: one :class:`RateLimiter` per endpoint, however many
    geocoders of the run call it; thread-safe.

    One endpoint is one cap: a geocoder that asks for a lower rate than the endpoint's
    limiter has lowers it for every geocoder of the endpoint (the lowest rate configured
    wins: none of them is ever exceeded); one that asks for a higher rate gets the lower cap.

    Args:
        url: ``memory://``, or the state URL this quota was chosen by (``sqlite://``).
        max_calls_per_day: a daily cap, which only the fleet's quota in Redis can count: an
            API geocoder asking for a limiter is refused (an offline run never asks).
        clock: the limiters' monotonic clock, injectable for tests.
        sleep: the limiters' async sleep, injectable for tests.
    """

    def __init__(
        self,
        *,
        url: str = "memory://",
        max_calls_per_day: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._daily_cap = max_calls_per_day
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryQuota(endpoints={len(self._limiters)})"

    def limiter(
        self, *, provider: str, endpoint: str, secret: str | None, qps: float
    ) -> RateLimiter:
        """The limiter of ``endpoint``, capped at the lowest ``qps`` asked for it so far.

        Raises:
            ConfigError: a ``max_calls_per_day`` was given (it is counted in Redis).
        """
        if self._daily_cap is not None:
            raise ConfigError(
                "max_calls_per_day is counted in Redis across the fleet: "
                "it needs a redis:// state URL"
            )
        with self._lock:
            limiter = self._limiters.get(endpoint)
            if limiter is None:
                limiter = RateLimiter(qps, clock=self._clock, sleep=self._sleep)
                self._limiters[endpoint] = limiter
        limiter.lower(qps)
        return limiter

    def close(self) -> None:
        """Nothing to release: the limiters hold no connection."""
