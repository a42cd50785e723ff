"""The Quota role: the request rate an API geocoder may use, shared by everything that calls
the same provider; and the :class:`Limiter` of one endpoint, what the HTTP runner calls.

A run opens one :class:`Quota` (``runners/wiring.py``, from the state URL) and hands it to
its geocoders; each asks it for the limiter of its endpoint. In-process
(:mod:`etl4all.quota.memory`) the limiter is this process's; in Redis
(:mod:`etl4all.quota.redis`) it is the whole fleet's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from typing import Protocol, Self, runtime_checkable

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep (``asyncio.sleep``); tests inject one that advances a virtual clock."""
Clock = Callable[[], float]
"""A monotonic clock (``time.monotonic``); tests inject a virtual one."""

MIN_SUGGESTED_QPS = 0.1
"""The lowest ``--qps`` a :class:`RateReport` suggests."""


@dataclasses.dataclass(frozen=True)
class RateReport:
    """Where the adaptive request rate of an API geocoder stands (see
    :mod:`etl4all.quota.adaptive`): the provider's real quota, as learned from its
    OVER_QUERY_LIMIT / HTTP 429 answers."""

    qps: float
    """The configured cap (``--qps``): the rate never goes above it."""
    rate: float
    """The rate allowed now."""
    slow_downs: int = 0
    """Times the rate was lowered."""
    peak: float | None = None
    """The lowest rate of the slow-downs so far: each was answered over the limit, so the
    quota lies below the lowest (None: never slowed down). The lowest, not the last: a loaded
    client starts fewer requests than its rate allows, and its rate creeps past the quota
    before the server says so."""

    @property
    def suggested_qps(self) -> float | None:
        """A ``--qps`` at or just below the quota found, when that is below the configured one.

        None when the rate never came down, or came back up to ``qps``.
        """
        if self.peak is None or self.rate >= self.qps:
            return None
        # the peak was answered over the limit: the quota is just below it
        nudge = 1e-9  # a peak of 0.3 is 0.30000000000000004 or 0.29999999999999993
        found = (
            math.floor(self.peak + nudge)
            if self.peak >= 2
            else math.floor(self.peak * 10 + nudge) / 10
        )
        found = max(found, MIN_SUGGESTED_QPS)
        return found if found < self.qps else None


class Limiter(Protocol):
    """What the HTTP runner needs of a rate limiter: the request starts of one endpoint."""

    @property
    def qps(self) -> float:
        """The cap, in requests per second."""
        ...

    async def acquire(self) -> float:
        """Wait until one more request may start, and count it as started; its start's stamp
        (for :meth:`slowed` and :meth:`clean`).

        Raises:
            DailyCapError: the fleet's daily cap is used up (Redis only).
            StoreError: Redis has not answered for too long (Redis only; retryable).
        """
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


@runtime_checkable
class Quota(Protocol):
    """Hands out the :class:`Limiter` of an endpoint; a context manager."""

    def limiter(self, *, provider: str, endpoint: str, secret: str | None, qps: float) -> Limiter:
        """The limiter of ``endpoint`` (called by ``provider`` with the API key ``secret``)
        at ``qps`` requests per second.

        Raises:
            ConfigError: the quota cannot serve it (a daily cap without Redis).
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...
