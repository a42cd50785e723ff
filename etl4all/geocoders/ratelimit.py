"""The request rate of the API geocoders: a hard cap at ``qps`` and an adaptive rate below it.

:func:`shared_limiter` gives every geocoder, thread and event loop of a process that calls the
same endpoint at the same rate one :class:`RateLimiter`, which never lets more than ``qps``
requests start in any 1-second window and spaces them evenly (aiolimiter's limiter is bound
to one event loop and lets bursts out). :class:`AdaptiveRate` (AIMD) makes the rate follow the
key's real quota: halved by an over-the-limit answer, raised back by clean ones. Timestamps
come from an injectable clock. The rules and figures: docs/geocoding.md (Rate limit).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from etl4all.geocoders.base import RateReport

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep (``asyncio.sleep``); tests inject one that advances a virtual clock."""
Clock = Callable[[], float]
"""A monotonic clock (``time.monotonic``)."""

DECREASE = 0.5
"""Rate kept on a slow-down. Halving takes a rate up to twice the quota under it at once (a
key at a quarter of ``qps`` needs two), and halfway down the server's 1-s window drains while
requests go on."""
SLOW_DOWN_PAUSE = 1.0
"""Seconds no request starts after a slow-down (the server's ``Retry-After`` when it sends
one): the requests of the second before fill the server's window, even at the lower rate."""
RECOVER_TO = 0.9
"""Share of the peak the rate climbs back to quickly after a slow-down."""
RECOVER_GAIN = 0.4
"""Share of the peak gained per second below :data:`RECOVER_TO`: from half the peak back to
90 % of it in about a second of clean answers..."""
RECOVER_STEP = 0.05
"""...and in at least 8 answers (the gain of one clean answer is at most this share)."""
PROBE_GAIN = 0.02
"""Share of the peak gained per second above :data:`RECOVER_TO` (additive increase): 5 s
from 90 % of the peak back to it, so a slow-down (about one OVER_QUERY_LIMIT answer) comes
every 8 s or so (with the pause, the warm-up and the recovery)..."""
PROBE_STEP = 0.0025
"""...and at least 40 answers apart (the gain of one clean answer is at most this share), so
over-the-limit answers stay a few percent of the requests at low quotas too."""
WARM_UP = 1.0
"""Seconds after a slow-down's pause whose clean answers do not raise the rate: the server's
window (Google's, the fake's: 1 s) had room left by the pause, so they prove nothing."""
HORIZON = 0.25
"""Seconds ahead a request may reserve its slot (two slots at least). Further ones ask again
later: slots reserved long ahead would keep the old spacing while the rate rises."""
MIN_SHARE = 1 / 16
"""Share of ``qps`` the rate never goes below. Every over-the-limit answer counts, and a
server that sends them at random (a provider's hiccup, a fault test) would otherwise halve
the rate again and again; a key whose quota is lower than this needs a lower ``--qps``
(the summary and the error message suggest one)."""


class Limiter(Protocol):
    """What the HTTP runner needs of a rate limiter: this process's :class:`RateLimiter`, or
    a fleet's (:class:`etl4all.geocoders.fleet.FleetLimiter`)."""

    @property
    def qps(self) -> float:
        """The configured cap, in requests per second."""
        ...

    async def acquire(self) -> float:
        """Wait until one more request may start, and count it as started; its start's stamp
        (for :meth:`slowed` and :meth:`clean`)."""
        ...

    def slowed(self, started: float, retry_after: float | None) -> bool:
        """The request started at ``started`` was answered over the rate limit; whether that
        lowered the rate (once per slow-down, not once per answer)."""
        ...

    def clean(self, started: float) -> None:
        """The request started at ``started`` got an answer that was not over the limit."""
        ...

    def report(self) -> RateReport:
        """Where the adaptive rate stands."""
        ...


def recover_step(rate: float, peak: float) -> float:
    """The rate one clean answer adds, at ``rate`` after a slow-down at ``peak``.

    The gains are per second (so the climb takes as long at every quota); the step of one
    answer is capped (so it takes enough answers at a low quota too).
    """
    if rate < RECOVER_TO * peak:
        return peak * min(RECOVER_GAIN / rate, RECOVER_STEP)
    return peak * min(PROBE_GAIN / rate, PROBE_STEP)


class AdaptiveRate:
    """AIMD on the provider's answers; see the module docstring. Not thread-safe.

    Args:
        qps: the ceiling, and the rate at the start.
        pause: seconds of the pause of a slow-down (without a ``Retry-After``).
        warm_up: seconds after that pause whose clean answers do not raise the rate.
    """

    def __init__(
        self, qps: float, *, pause: float = SLOW_DOWN_PAUSE, warm_up: float = WARM_UP
    ) -> None:
        self.qps = qps
        self.pause = pause
        self.warm_up = warm_up
        self.rate = qps
        self.floor = qps * MIN_SHARE
        self.peak: float | None = None
        self.slow_downs = 0
        self.cut_at = -math.inf
        """When the last slow-down happened: answers to earlier starts are the old rate's."""
        self.counts_from = -math.inf
        """Clean answers to starts from then on raise the rate (after the last slow-down's
        pause and warm-up)."""

    def slowed(self, started: float, now: float, retry_after: float | None) -> float:
        """An over-the-limit answer to the start at ``started``, seen at ``now``.

        Returns:
            The seconds every request must wait: :attr:`pause` (or ``retry_after``) when this
            answer cuts the rate, else ``retry_after`` or 0.
        """
        if started <= self.cut_at:  # the old rate's answer: that rate is cut already
            return retry_after or 0.0
        pause = retry_after or self.pause
        self.peak = self.rate if self.peak is None else min(self.peak, self.rate)
        self.rate = max(self.floor, self.rate * DECREASE)
        self.cut_at = now
        self.counts_from = now + pause + self.warm_up
        self.slow_downs += 1
        return pause

    def clean(self, started: float) -> None:
        """A clean answer to the start at ``started``: the rate creeps up towards ``qps``."""
        if self.peak is None or started < self.counts_from or self.rate >= self.qps:
            return
        self.rate = min(self.qps, self.rate + recover_step(self.rate, self.peak))

    def report(self) -> RateReport:
        """Where the rate stands."""
        return RateReport(self.qps, self.rate, self.slow_downs, self.peak)


class RateLimiter:
    """At most ``qps`` request starts in any 1-second window, evenly spaced, at the adaptive
    rate (:class:`AdaptiveRate`); thread-safe.

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
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")
        self.qps = qps
        whole = max(1, math.floor(qps))
        self._burst = max(1, whole - math.floor(qps * headroom))
        self._window = max(1.0, whole / qps) + slack
        self._interval = self._window / self._burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = -math.inf
        self._last = -math.inf
        self._resume_at = -math.inf
        self._epoch = 0
        """Bumped by a pause or a slow-down: the slots reserved before are void."""
        self._starts: deque[float] = deque(maxlen=self._burst)
        self._adaptive = AdaptiveRate(qps, pause=pause, warm_up=warm_up)

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

    def _hold(self, until: float) -> None:
        """No start before ``until`` (nor before an earlier, longer pause ends); the slots
        reserved so far are void."""
        self._resume_at = max(self._resume_at, until)
        self._next_slot = max(self._resume_at, self._last + self._spacing())
        self._epoch += 1


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(endpoint: str, qps: float) -> RateLimiter:
    """The process-wide limiter for ``endpoint`` at ``qps``.

    Every geocoder built for the same endpoint and rate in one process shares one cap (and
    one adaptive rate), so several consumers or stages in a process never add up to more
    than ``qps``.
    """
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get((endpoint, qps))
        if limiter is None:
            limiter = _LIMITERS[(endpoint, qps)] = RateLimiter(qps)
        return limiter
