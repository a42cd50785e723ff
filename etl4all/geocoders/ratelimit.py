"""The QPS cap of the API geocoders: one limiter per endpoint and rate, shared by the process.

:func:`shared_limiter` hands every geocoder instance, thread and event loop of a process that
calls the same endpoint at the same rate one :class:`RateLimiter`, so several consumers or
stages in a process never add up to more than ``qps``. It never lets more than ``qps`` requests
start in any 1-second window (keeping a small safety margin, see the class) and spaces them
evenly instead of letting them out in bursts. aiolimiter is not used because an
``AsyncLimiter`` is bound to one event loop, and its leaky bucket both allows an initial burst
and loses capacity when the loop wakes up late.

On an OVER_QUERY_LIMIT or HTTP 429 the HTTP runner (:mod:`etl4all.geocoders.runner`) pauses
the shared limiter (:meth:`RateLimiter.pause`), so the whole process backs off, not only the
coroutine that was told.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep (``asyncio.sleep``); tests inject one that advances a virtual clock."""
Clock = Callable[[], float]
"""A monotonic clock (``time.monotonic``)."""


class Limiter(Protocol):
    """What the HTTP runner needs of a QPS cap: this process's :class:`RateLimiter`, or a
    fleet's (:class:`etl4all.geocoders.fleet.FleetLimiter`)."""

    @property
    def qps(self) -> float:
        """Requests per second."""
        ...

    def pause(self, seconds: float) -> None:
        """Start no request for ``seconds``."""
        ...

    async def acquire(self) -> None:
        """Wait until one more request may start, and count it as started."""
        ...


class RateLimiter:
    """At most ``qps`` request starts in any 1-second window, evenly spaced; thread-safe.

    Each :meth:`acquire` first reserves the next free slot (so the schedule does not drift
    when the event loop wakes up late), sleeps until it, and then checks the real start times
    of the last requests (a sliding window), so a late wake-up can never squeeze one request
    too many into a window.

    Requests started exactly ``1/qps`` apart do not arrive exactly ``1/qps`` apart at the
    server (connection set-up, network, event-loop and garbage-collector pauses), and the
    server's count is the one that matters. So the limiter keeps two safety margins: the
    window is ``slack`` seconds longer than 1 s, and at high rates ``floor(qps * headroom)``
    requests of each window are left unused (none below 40 QPS). At 200 QPS the cap is
    195 requests per 1.025 s (95 % of ``qps``); at 40 QPS, 39 per 1.025 s; at 1 QPS, 1 per
    1.025 s.

    Args:
        qps: requests per second (fractions allowed: 0.5 means one every 2 s).
        slack: seconds added to the 1-s window.
        headroom: fraction of ``qps`` left unused in every window (rounded down).
        clock: monotonic clock, injectable for tests.
        sleep: async sleep, injectable for tests.
    """

    def __init__(
        self,
        qps: float,
        *,
        slack: float = 0.025,
        headroom: float = 0.025,
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
        self._starts: deque[float] = deque(maxlen=self._burst)

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

    def pause(self, seconds: float) -> None:
        """Start no request for ``seconds``: the provider said slow down (OVER_QUERY_LIMIT,
        HTTP 429), so every coroutine and thread of the process backs off together."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    async def acquire(self) -> None:
        """Wait until one more request may start, and count it as started."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        delay = slot - now
        while True:
            if delay > 0:
                await self._sleep(delay)
            with self._lock:
                now = self._clock()
                # one expression for both the test and the wait: no float ping-pong
                delay = self._starts[0] + self._window - now if self._starts else 0.0
                if len(self._starts) < self._burst or delay <= 0:
                    self._starts.append(now)
                    return


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(endpoint: str, qps: float) -> RateLimiter:
    """The process-wide limiter for ``endpoint`` at ``qps``.

    Every geocoder built for the same endpoint and rate in one process shares one cap, so
    several consumers or stages in a process never add up to more than ``qps``.
    """
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get((endpoint, qps))
        if limiter is None:
            limiter = _LIMITERS[(endpoint, qps)] = RateLimiter(qps)
        return limiter
