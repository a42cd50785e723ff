"""The adaptive request rate (AIMD) both quotas follow: in this process
(:mod:`etl4all.quota.memory`) and, in Lua, the fleet's in Redis (:mod:`etl4all.quota.redis`).

**The rate follows the real quota.** A key's real quota may be lower than ``qps`` (a Google
project with a lowered quota). An OVER_QUERY_LIMIT or HTTP 429 answer to a request started
after the last slow-down halves the rate (multiplicative decrease) and pauses every request
for :data:`SLOW_DOWN_PAUSE` (or the server's ``Retry-After``), so the server's own window
drains; answers to requests started before it are the old rate's and change nothing. Each
clean answer then raises the rate a little (additive increase): quickly back to
:data:`RECOVER_TO` of the rate that was answered over the limit (the *peak*, the lowest such
rate so far: the quota lies just below it), then slowly past it, up to ``qps``.
Against a key whose quota is a quarter of ``qps`` the rate comes down in two slow-downs, then
cycles between half the quota and the quota: one OVER_QUERY_LIMIT answer every 8 s or so
(a few percent of the requests, the first seconds included) at about 70 % of the quota, and
:class:`~etl4all.quota.base.RateReport` tells the quota found and the ``--qps`` to set
(at which the key runs at 97 % of it with none). The rate never goes below
:data:`MIN_SHARE` of ``qps``.
"""

from __future__ import annotations

import math

from etl4all.quota.base import RateReport

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
MIN_SHARE = 1 / 16
"""Share of ``qps`` the rate never goes below. Every over-the-limit answer counts, and a
server that sends them at random (a provider's hiccup, a fault test) would otherwise halve
the rate again and again; a key whose quota is lower than this needs a lower ``--qps``
(the summary and the error message suggest one)."""


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

    def lower(self, qps: float) -> None:
        """A lower ceiling (the in-process limiter's cap lowered): the rate and its floor
        follow it; what the slow-downs found stays."""
        self.qps = qps
        self.floor = qps * MIN_SHARE
        self.rate = min(self.rate, qps)

    def report(self) -> RateReport:
        """Where the rate stands."""
        return RateReport(self.qps, self.rate, self.slow_downs, self.peak)
