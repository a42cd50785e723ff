"""The request rate, the slow-down pause and the daily cap of a whole fleet, shared in Redis.

:class:`RedisQuota` serves when the state URL is ``redis://`` or ``rediss://``: every
transformer calling the same provider with the same key shares one :class:`FleetLimiter` state:
``--qps`` and ``--max-calls-per-day`` are the fleet's, and a slow-down seen by one slows all.
Each start is one Lua script call (:data:`GRANT`) on Redis's own clock, so hosts need no
synchronised clocks; keys carry a SHA-256 of the endpoint and key, never the key. A Redis
restart or ``SCRIPT FLUSH`` is an outage after which every key rebuilds itself. The keys and
rules: docs/geocoding.md (How requests are made)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
import os
import random
import socket
import threading
import time
import uuid

import redis

from etl4all import urls
from etl4all.closing import Closing
from etl4all.errors import DailyCapError, StoreError
from etl4all.quota import adaptive
from etl4all.quota.base import Clock, RateReport, Sleep
from etl4all.quota.memory import RateLimiter
from etl4all.redis_client import REDIS_ERRORS, connect, describe

log = logging.getLogger(__name__)

HORIZON = 0.05
"""Seconds ahead a start slot is handed out (two slots at least). A slow-down or a pause
reaches the fleet's starts within that, and a member waiting for a slot further ahead asks
again later, after a random delay of up to half of it."""
DAY_KEY_SECONDS = 2 * 86400
"""Lifetime of a daily counter: a day plus a margin."""
STATE_TTL_SECONDS = 3600
"""The fleet's adaptive rate is forgotten after an hour without a request (back to ``qps``)."""
OUTAGE_RETRY = 0.25
"""Seconds between two tries while Redis does not answer: the fleet resumes that soon after."""
OUTAGE_SECONDS = 30.0
"""Seconds without Redis before a request start fails (a retryable ``StoreError``)."""

_WAIT = 1
"""The grant script's status when no slot was handed out."""

GRANT = """
-- One request start of the fleet: the next free slot, at Redis's clock (microseconds).
-- KEYS: 1 rate (hash), 2 pause
-- ARGV: 1 qps, 2 spacing at qps, 3 horizon, 4 clean answers, 5 the earliest start among
--   them, 6 rate ttl (ms), 7 recover_to, 8 recover_gain, 9 recover_step, 10 probe_gain,
--   11 probe_step
-- Returns: status (0 a slot, 1 ask again later), the wait, the slot, rate, peak,
--   slow-downs, the time clean answers count from.
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local qps = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'rate', 'peak', 'counts_from', 'slow_downs', 'next')
local rate = math.min(tonumber(state[1]) or qps, qps)
local peak = tonumber(state[2])
local counts_from = tonumber(state[3]) or 0
local slow_downs = tonumber(state[4]) or 0
local function answer(status, wait, slot)
    return {status, wait, slot, string.format('%.17g', rate),
            peak and string.format('%.17g', peak) or '', slow_downs,
            string.format('%.0f', counts_from)}
end
-- clean answers raise the rate: etl4all.quota.adaptive.recover_step
local cleans = tonumber(ARGV[4])
if cleans > 0 and peak and rate < qps and tonumber(ARGV[5]) >= counts_from then
    for _ = 1, cleans do
        local share, step = tonumber(ARGV[10]), tonumber(ARGV[11])
        if rate < tonumber(ARGV[7]) * peak then
            share, step = tonumber(ARGV[8]), tonumber(ARGV[9])
        end
        rate = math.min(qps, rate + peak * math.min(share / rate, step))
        if rate >= qps then break end
    end
    redis.call('HSET', KEYS[1], 'rate', rate)
end
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return answer(1, paused * 1000, 0) end
local spacing = math.max(tonumber(ARGV[2]), 1000000 / rate)
local slot = math.max(tonumber(state[5]) or 0, now)
local horizon = math.max(tonumber(ARGV[3]), 2 * spacing)
if slot - now > horizon then return answer(1, slot - now - horizon, 0) end
redis.call('HSET', KEYS[1], 'next', slot + spacing)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return answer(0, slot - now, slot)
"""
"""The request start script (see the module docstring); its Python twin is
:class:`~etl4all.quota.memory.RateLimiter`."""

COUNT = """
-- One request start against the daily cap (when the slot is reached, so a slot given up is
-- not counted); a member's own count writes back what a restarted Redis forgot.
-- KEYS: 1 calls of the day (hash)
-- ARGV: 1 cap, 2 member, 3 the member's starts today, 4 ttl (ms)
-- Returns: the day's total with this start, or -1 when the cap is used up.
local mine = tonumber(redis.call('HGET', KEYS[1], ARGV[2])) or 0
local known = tonumber(ARGV[3])
if mine < known then
    redis.call('HINCRBY', KEYS[1], 'total', known - mine)
    redis.call('HSET', KEYS[1], ARGV[2], known)
end
if (tonumber(redis.call('HGET', KEYS[1], 'total')) or 0) >= tonumber(ARGV[1]) then
    return -1
end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
local total = redis.call('HINCRBY', KEYS[1], 'total', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return total
"""
"""The daily cap's count (with ``--max-calls-per-day`` only)."""

CUT = """
-- An over-the-limit answer to the start at ARGV[2] (microseconds, Redis's clock).
-- KEYS: 1 rate (hash), 2 pause
-- ARGV: 1 qps, 2 the start, 3 decrease, 4 floor, 5 pause on a slow-down (ms),
--   6 the server's Retry-After (ms, 0: none), 7 warm-up (us), 8 rate ttl (ms)
-- Returns: 1 if the rate was cut, the rate, the peak, slow-downs, the pause (ms),
--   the time clean answers count from.
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local qps = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'rate', 'peak', 'cut_at', 'slow_downs', 'counts_from')
local rate = math.min(tonumber(state[1]) or qps, qps)
local peak = tonumber(state[2])
local slow_downs = tonumber(state[4]) or 0
local counts_from = tonumber(state[5]) or 0
local pause = tonumber(ARGV[6])
local cut = 0
if tonumber(ARGV[2]) > (tonumber(state[3]) or 0) then
    cut = 1
    if pause <= 0 then pause = tonumber(ARGV[5]) end
    peak = peak and math.min(peak, rate) or rate
    rate = math.max(tonumber(ARGV[4]), rate * tonumber(ARGV[3]))
    slow_downs = slow_downs + 1
    counts_from = now + pause * 1000 + tonumber(ARGV[7])
    redis.call('HSET', KEYS[1], 'rate', rate, 'peak', peak, 'cut_at', now,
               'counts_from', counts_from, 'slow_downs', slow_downs)
    redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
if pause > 0 and redis.call('PTTL', KEYS[2]) < pause then
    redis.call('SET', KEYS[2], 1, 'PX', pause)
end
return {cut, string.format('%.17g', rate), peak and string.format('%.17g', peak) or '',
        slow_downs, pause, string.format('%.0f', counts_from)}
"""
"""The slow-down script; its Python twin is :meth:`AdaptiveRate.slowed`."""


class FleetLimiter:
    """The :class:`~etl4all.quota.base.Limiter` of a fleet; thread-safe.

    Building it makes no request: the scripts are loaded on first use.

    Args:
        client: Redis client of the state URL.
        prefix: key prefix of the state URL.
        scope: provider and hashed key, see :func:`fleet_scope`.
        qps: the fleet's requests per second.
        max_calls_per_day: the fleet's request starts per UTC day (None: no cap).
        pause: seconds the fleet pauses after a slow-down (without a ``Retry-After``).
        warm_up: seconds after that pause whose clean answers do not raise the rate.
        clock: monotonic clock of the waits, injectable for tests.
        sleep: async sleep, injectable for tests.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        prefix: str,
        scope: str,
        qps: float,
        max_calls_per_day: int | None = None,
        pause: float = adaptive.SLOW_DOWN_PAUSE,
        warm_up: float = adaptive.WARM_UP,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.qps = qps
        self._spacing = RateLimiter(qps).interval  # its margins at qps
        self._clock = clock
        self._sleep = sleep
        self._keys = f"{prefix}quota:{scope}"
        self._cap = max_calls_per_day
        self._pause = pause
        self._warm_up = warm_up
        self._grant = client.register_script(GRANT)
        self._count = client.register_script(COUNT)
        self._cut = client.register_script(CUT)
        self._client = client
        self._member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._random = random.Random()
        self._lock = threading.Lock()
        self._retry_at = -math.inf
        """Monotonic time before which this process does not ask Redis again."""
        self._down_since: float | None = None
        """Monotonic time Redis stopped answering (None: it answers)."""
        self._cleans = 0
        self._clean_since = math.inf
        self._counts_from = 0
        self._today = ("", 0)
        """The UTC day and this process's starts counted in it."""
        self._report = RateReport(qps, qps)

    def __repr__(self) -> str:
        return f"FleetLimiter(qps={self.qps}, max_calls_per_day={self._cap})"

    def report(self) -> RateReport:
        """Where the fleet's adaptive rate stood at this process's last request."""
        with self._lock:
            return self._report

    def clean(self, started: float) -> None:
        """A clean answer: counted here, sent to Redis with this process's next start."""
        stamp = round(started * 1_000_000)
        with self._lock:
            if stamp >= self._counts_from:
                self._cleans += 1
                self._clean_since = min(self._clean_since, stamp)

    def slowed(self, started: float, retry_after: float | None) -> bool:
        """An over-the-limit answer: the fleet's rate is halved and every member pauses (once
        per slow-down), or pauses ``retry_after`` as the server asks.

        When Redis does not answer, only this process pauses.
        """
        try:
            cut, rate, peak, slow_downs, pause_ms, counts_from = self._cut(
                keys=[f"{self._keys}:rate", f"{self._keys}:pause"],
                args=[
                    self.qps,
                    round(started * 1_000_000),
                    adaptive.DECREASE,
                    self.qps * adaptive.MIN_SHARE,
                    max(1, round(self._pause * 1000)),
                    round(1000 * (retry_after or 0)),
                    round(self._warm_up * 1_000_000),
                    STATE_TTL_SECONDS * 1000,
                ],
            )
        except REDIS_ERRORS as exc:
            log.warning(
                "fleet limiter could not record a slow-down (%s): only this process pauses",
                type(exc).__name__,
            )
            with self._lock:
                self._retry_at = max(self._retry_at, self._clock() + (retry_after or self._pause))
            return False
        with self._lock:
            self._learn(rate, peak, slow_downs, counts_from)
            self._retry_at = max(self._retry_at, self._clock() + int(pause_ms) / 1000)
        return bool(cut)

    async def acquire(self) -> float:
        """Wait until the fleet may start one more request, and count it; the start's stamp
        (Redis's clock, in seconds).

        Raises:
            DailyCapError: the fleet's ``max_calls_per_day`` is used up.
            StoreError: Redis has not answered for :data:`OUTAGE_SECONDS` (retryable).
        """
        while True:
            wait, slot = self._try()
            if wait > 0:
                await self._sleep(wait)
            if slot and self._counted():
                return slot

    def _try(self) -> tuple[float, float]:
        """Take a start slot in Redis: (seconds until it, its stamp), or (seconds to wait
        before asking again, 0)."""
        with self._lock:
            now = self._clock()
            if (wait := self._retry_at - now) > 0:
                return wait, 0.0
            try:
                reply = self._grant(
                    keys=[f"{self._keys}:rate", f"{self._keys}:pause"],
                    args=self._grant_args(),
                )
            except REDIS_ERRORS as exc:
                return self._down(exc, now), 0.0
            self._up(now)
            status, wait_us, slot_us, rate, peak, slow_downs, counts_from = reply
            self._cleans, self._clean_since = 0, math.inf  # Redis has them now
            self._learn(rate, peak, slow_downs, counts_from)
            if status == _WAIT:  # a pause, or no free slot within the horizon
                jitter = self._random.uniform(0, HORIZON / 2)
                return self._wait(now, int(wait_us) / 1_000_000 + jitter), 0.0
            return int(wait_us) / 1_000_000, int(slot_us) / 1_000_000

    def _counted(self) -> bool:
        """Count a start against the daily cap (always True without one); False when Redis
        failed (the slot is lost: ask for another).

        Raises:
            DailyCapError: the cap is used up.
        """
        if self._cap is None:
            return True
        with self._lock:
            now = self._clock()
            day = dt.datetime.now(dt.UTC).date().isoformat()
            if self._today[0] != day:
                self._today = (day, 0)
            try:
                total = self._count(
                    keys=[f"{self._keys}:calls:{day}"],
                    args=[self._cap, self._member, self._today[1], DAY_KEY_SECONDS * 1000],
                )
            except REDIS_ERRORS as exc:
                self._down(exc, now)
                return False
            self._up(now)
            if total < 0:
                raise DailyCapError(
                    f"the daily cap of {self._cap} API calls ({day} UTC, shared by every "
                    "transformer of this key) is reached: no new batch is taken until it "
                    "resets at 00:00 UTC or --max-calls-per-day is raised"
                )
            self._today = (day, self._today[1] + 1)
            return True

    def _grant_args(self) -> list[float | int | str]:
        return [
            self.qps,
            math.ceil(self._spacing * 1_000_000),  # rounded up: never one start too many
            round(HORIZON * 1_000_000),
            self._cleans,
            self._clean_since if self._cleans else 0,
            STATE_TTL_SECONDS * 1000,
            adaptive.RECOVER_TO,
            adaptive.RECOVER_GAIN,
            adaptive.RECOVER_STEP,
            adaptive.PROBE_GAIN,
            adaptive.PROBE_STEP,
        ]

    def _learn(self, rate: str, peak: str, slow_downs: int, counts_from: str) -> None:
        """Keep what Redis said of the fleet's rate (for :meth:`report` and :meth:`clean`)."""
        found = float(peak) if peak else None
        self._report = RateReport(self.qps, float(rate), int(slow_downs), found)
        self._counts_from = int(counts_from)

    def _wait(self, now: float, seconds: float) -> float:
        """Ask Redis again in ``seconds`` (every coroutine of the process)."""
        self._retry_at = now + seconds
        return seconds

    def _down(self, exc: BaseException, now: float) -> float:
        """Redis failed: wait and ask again, or raise once it has failed for too long."""
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "fleet limiter: Redis failed (%s); no request starts until it answers again "
                "(asking every %.2f s, for up to %.0f s)",
                type(exc).__name__,
                OUTAGE_RETRY,
                OUTAGE_SECONDS,
            )
        elif now - self._down_since >= OUTAGE_SECONDS:
            raise StoreError(
                f"fleet limiter could not take a request start: Redis has failed for "
                f"{now - self._down_since:.0f} s ({describe(exc, self._client)}); is it running?"
            ) from exc
        return self._wait(now, OUTAGE_RETRY)

    def _up(self, now: float) -> None:
        """Redis answered: log the end of an outage."""
        if self._down_since is not None:
            log.info("fleet limiter: Redis answers again after %.1f s", now - self._down_since)
            self._down_since = None

    def calls_today(self) -> int:
        """Request starts counted today (UTC) by the fleet (0 without a daily cap).

        Raises:
            StoreError: Redis failed (retryable).
        """
        day = dt.datetime.now(dt.UTC).date().isoformat()
        try:
            return int(self._client.hget(f"{self._keys}:calls:{day}", "total") or 0)
        except REDIS_ERRORS as exc:
            raise StoreError(
                f"fleet limiter could not read the daily count: {type(exc).__name__}"
            ) from exc


def fleet_scope(provider: str, endpoint: str, secret: str | None) -> str:
    """``provider:hash``: one fleet quota per provider, endpoint and key; the key is hashed."""
    digest = hashlib.sha256(f"{endpoint}\n{secret or ''}".encode()).hexdigest()[:24]
    return f"{provider}:{digest}"


class RedisQuota(Closing):
    """The fleet's quota, in the Redis of the state URL: the :class:`FleetLimiter` of each
    provider, endpoint and key, on one client that :meth:`close` closes; thread-safe.

    Building it makes no request. A scope asked for at two rates gets two limiters on the same
    keys in Redis (each member of a fleet sends its own ``qps`` with every start).

    Args:
        url: ``redis://`` or ``rediss://`` URL, ``prefix=`` included (the state URL).
        max_calls_per_day: the fleet's request starts per UTC day for each scope (None: no cap).
        clock: the limiters' monotonic clock, injectable for tests.
        sleep: the limiters' async sleep, injectable for tests.

    Raises:
        ConfigError: the URL is not a valid Redis URL.
    """

    def __init__(
        self,
        *,
        url: str,
        max_calls_per_day: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._safe_url = urls.redact(url)
        self._client, self._prefix = connect(url)
        self._daily_cap = max_calls_per_day
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[tuple[str, float], FleetLimiter] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisQuota({self._safe_url!r}, max_calls_per_day={self._daily_cap})"

    def limiter(
        self, *, provider: str, endpoint: str, secret: str | None, qps: float
    ) -> FleetLimiter:
        """The fleet's limiter of ``provider`` at ``endpoint`` with the key ``secret``."""
        scope = fleet_scope(provider, endpoint, secret)
        with self._lock:
            limiter = self._limiters.get((scope, qps))
            if limiter is None:
                limiter = self._limiters[(scope, qps)] = FleetLimiter(
                    client=self._client,
                    prefix=self._prefix,
                    scope=scope,
                    qps=qps,
                    max_calls_per_day=self._daily_cap,
                    clock=self._clock,
                    sleep=self._sleep,
                )
            return limiter

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
