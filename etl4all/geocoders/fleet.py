"""The request rate, the slow-down pause and the daily cap of a whole fleet, shared in Redis.

When the state store is Redis, every transformer that calls the same provider with the same key
and state URL shares one :class:`FleetLimiter` state in Redis, so five transformers with
``--qps 50`` together start at most 50 requests in any 1-second window, an OVER_QUERY_LIMIT or
HTTP 429 seen by one slows all down, and ``--max-calls-per-day`` counts the fleet's calls.

Every request start is one call of one Lua script (:data:`GRANT`), and every over-the-limit
answer one call of another (:data:`CUT`); both read Redis's own clock (``TIME``), so the
hosts of a fleet need no synchronised clocks. Keys, under ``{prefix}quota:{scope}``:

- ``:starts`` (sorted set): the starts of the last window. The cap keeps the in-process
  :class:`~etl4all.geocoders.ratelimit.RateLimiter`'s safety margins (``burst`` starts per
  ``window`` of 1.025 s) and also allows a tenth of it per tenth of the window, so the fleet's
  requests are spread over the window rather than let out in one burst.
- ``:rate`` (hash): the fleet's adaptive rate (the rules of
  :class:`~etl4all.geocoders.ratelimit.AdaptiveRate`: halved by an over-the-limit answer to a
  start after the last slow-down, raised back by clean answers, which each process counts and
  sends with its next start) and the earliest time of the next start at that rate; it
  expires after :data:`STATE_TTL_SECONDS` unused.
- ``:pause`` with a ``PX`` TTL: set by a slow-down (or a ``Retry-After``); no start before it
  expires.
- ``:calls:{YYYY-MM-DD}`` (hash, UTC day): ``total`` and each process's starts; past the cap
  a start is refused with :class:`~etl4all.errors.DailyCapError` (the batch is given back to
  the queue and the worker stops).

**Restarts are outages.** The scripts are redis-py ``Script`` objects: after a restart, a
failover or a ``SCRIPT FLUSH`` the server's ``NOSCRIPT`` makes them load themselves again.
Every key rebuilds itself: an empty window or rate is a fresh start at ``qps``, and each
process writes its own starts of the day back into a day counter Redis forgot. While Redis
does not answer, no request starts; the limiter asks again every :data:`OUTAGE_RETRY` seconds
and gives up (a retryable ``StoreError``: the batch is retried later) only after
:data:`OUTAGE_SECONDS`. Each process also keeps its own in-process limiter at ``qps``, so its
coroutines ask Redis at most ``qps`` times a second, evenly spaced; once Redis said "wait",
none of them asks again before that time is up.

``scope`` is the provider name and a SHA-256 of the endpoint and API key: the key never
appears in Redis in clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import logging
import math
import os
import socket
import threading
import time
import uuid

import redis

from etl4all.errors import DailyCapError, StoreError
from etl4all.geocoders import ratelimit
from etl4all.geocoders.base import RateReport
from etl4all.geocoders.ratelimit import Clock, RateLimiter, Sleep
from etl4all.state.redis import REDIS_ERRORS, connect

log = logging.getLogger(__name__)

SLICES = 10
"""The window's cap is also enforced per tenth of the window (when it is at least 10)."""
DAY_KEY_SECONDS = 2 * 86400
"""Lifetime of a daily counter: a day plus a margin."""
STATE_TTL_SECONDS = 3600
"""The fleet's adaptive rate is forgotten after an hour without a request (back to ``qps``)."""
OUTAGE_RETRY = 0.25
"""Seconds between two tries while Redis does not answer: the fleet resumes that soon after."""
OUTAGE_SECONDS = 30.0
"""Seconds without Redis before a request start fails (a retryable ``StoreError``)."""

_GRANTED, _WAIT, _OVER_CAP = 0, 1, 2

GRANT = """
-- One request start of the fleet, at Redis's clock (microseconds).
-- KEYS: 1 starts (zset), 2 rate (hash), 3 pause, 4 calls of the day (hash)
-- ARGV: 1 qps, 2 window, 3 burst, 4 slice, 5 slice burst (0: none), 6 clean answers,
--   7 the earliest start among them, 8 daily cap (-1: none), 9 member, 10 the member's
--   starts today, 11 rate ttl (ms), 12 day ttl (ms), 13 a unique name for this start,
--   14 recover_to, 15 recover_gain, 16 recover_step, 17 probe_gain, 18 probe_step
-- Returns: status (0 granted, 1 wait, 2 over the daily cap), wait, now, rate, peak,
--   slow-downs, the time clean answers count from, the day's total.
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local qps = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[2], 'rate', 'peak', 'counts_from', 'slow_downs', 'next')
local rate = math.min(tonumber(state[1]) or qps, qps)
local peak = tonumber(state[2])
local counts_from = tonumber(state[3]) or 0
local slow_downs = tonumber(state[4]) or 0
local next_start = tonumber(state[5]) or 0
local total = -1
local function answer(status, wait)
    return {status, wait, now, string.format('%.17g', rate),
            peak and string.format('%.17g', peak) or '', slow_downs,
            string.format('%.0f', counts_from), total}
end
-- clean answers raise the rate: etl4all.geocoders.ratelimit.recover_step
local cleans = tonumber(ARGV[6])
if cleans > 0 and peak and rate < qps and tonumber(ARGV[7]) >= counts_from then
    for _ = 1, cleans do
        local share, step = tonumber(ARGV[17]), tonumber(ARGV[18])
        if rate < tonumber(ARGV[14]) * peak then
            share, step = tonumber(ARGV[15]), tonumber(ARGV[16])
        end
        rate = math.min(qps, rate + peak * math.min(share / rate, step))
        if rate >= qps then break end
    end
    redis.call('HSET', KEYS[2], 'rate', rate)
end
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return answer(1, paused * 1000) end
if rate < qps and next_start > now then return answer(1, next_start - now) end
-- the cap at qps: a sliding window, and a tenth of it per tenth of the window
local window, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count >= burst then
    local freeing = redis.call('ZRANGE', KEYS[1], count - burst, count - burst, 'WITHSCORES')
    return answer(1, tonumber(freeing[2]) + window - now)
end
local slice, slice_burst = tonumber(ARGV[4]), tonumber(ARGV[5])
if slice_burst > 0 then
    local since = '(' .. string.format('%.0f', now - slice)
    if redis.call('ZCOUNT', KEYS[1], since, '+inf') >= slice_burst then
        local freeing = redis.call('ZRANGE', KEYS[1], count - slice_burst,
                                   count - slice_burst, 'WITHSCORES')
        return answer(1, tonumber(freeing[2]) + slice - now)
    end
end
-- the daily cap; a member's own count writes back what a restarted Redis forgot
local cap = tonumber(ARGV[8])
if cap >= 0 then
    local mine = tonumber(redis.call('HGET', KEYS[4], ARGV[9])) or 0
    local known = tonumber(ARGV[10])
    if mine < known then
        redis.call('HINCRBY', KEYS[4], 'total', known - mine)
        redis.call('HSET', KEYS[4], ARGV[9], known)
    end
    total = tonumber(redis.call('HGET', KEYS[4], 'total')) or 0
    if total >= cap then return answer(2, 0) end
    redis.call('HINCRBY', KEYS[4], ARGV[9], 1)
    total = redis.call('HINCRBY', KEYS[4], 'total', 1)
    redis.call('PEXPIRE', KEYS[4], ARGV[12])
end
redis.call('ZADD', KEYS[1], now, ARGV[13])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
if rate < qps then
    redis.call('HSET', KEYS[2], 'next', now + 1000000 / rate)
    redis.call('PEXPIRE', KEYS[2], ARGV[11])
end
return answer(0, 0)
"""
"""The request start script (see the module docstring); its Python twin is
:class:`~etl4all.geocoders.ratelimit.RateLimiter`."""

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
    peak = rate
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
    """The :class:`~etl4all.geocoders.ratelimit.Limiter` of a fleet; thread-safe.

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
        pause: float = ratelimit.SLOW_DOWN_PAUSE,
        warm_up: float = ratelimit.WARM_UP,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._local = RateLimiter(qps, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        self._keys = f"{prefix}quota:{scope}"
        self._cap = max_calls_per_day
        self._pause = pause
        self._warm_up = warm_up
        self._grant = client.register_script(GRANT)
        self._cut = client.register_script(CUT)
        self._client = client
        window_us = round(self._local.window * 1_000_000)
        burst = self._local.burst
        self._window = (window_us, burst)
        self._slice = (
            (window_us // SLICES, math.ceil(burst / SLICES)) if burst >= SLICES else (0, 0)
        )
        self._member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._names = itertools.count()
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

    @property
    def qps(self) -> float:
        """The fleet's request rate cap."""
        return self._local.qps

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
                    ratelimit.DECREASE,
                    self.qps * ratelimit.MIN_SHARE,
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
            self._local.pause(retry_after or self._pause)
            return False
        seconds = int(pause_ms) / 1000
        with self._lock:
            self._learn(rate, peak, slow_downs, counts_from)
            self._retry_at = max(self._retry_at, self._clock() + seconds)
        if seconds > 0:
            self._local.pause(seconds)
        return bool(cut)

    async def acquire(self) -> float:
        """Wait until the fleet may start one more request, and count it; the start's stamp
        (Redis's clock, in seconds).

        Raises:
            DailyCapError: the fleet's ``max_calls_per_day`` is used up.
            StoreError: Redis has not answered for :data:`OUTAGE_SECONDS` (retryable).
        """
        while True:
            await self._local.acquire()
            wait, stamp = self._try()
            if wait <= 0:
                return stamp
            await self._sleep(wait)

    def _try(self) -> tuple[float, float]:
        """Take a start in Redis: (0, its stamp), or (seconds to wait before trying again, 0)."""
        with self._lock:
            now = self._clock()
            if (wait := self._retry_at - now) > 0:
                return wait, 0.0
            day = dt.datetime.now(dt.UTC).date().isoformat()
            if self._today[0] != day:
                self._today = (day, 0)
            try:
                reply = self._grant(
                    keys=[
                        f"{self._keys}:starts",
                        f"{self._keys}:rate",
                        f"{self._keys}:pause",
                        f"{self._keys}:calls:{day}",
                    ],
                    args=self._grant_args(),
                )
            except REDIS_ERRORS as exc:
                return self._down(exc, now), 0.0
            self._up(now)
            status, wait_us, stamp_us, rate, peak, slow_downs, counts_from, total = reply
            self._cleans, self._clean_since = 0, math.inf  # Redis has them now
            self._learn(rate, peak, slow_downs, counts_from)
            if status == _OVER_CAP:
                raise DailyCapError(
                    f"the daily cap of {self._cap} API calls ({day} UTC, shared by every "
                    "transformer of this key) is reached: no new batch is taken until it "
                    "resets at 00:00 UTC or --max-calls-per-day is raised"
                )
            if status == _WAIT:
                return self._wait(now, max(1, int(wait_us)) / 1_000_000), 0.0
            if self._cap is not None:
                self._today = (day, self._today[1] + 1)
            log.debug("fleet start %s; %s of the day", stamp_us, total)
            return 0.0, int(stamp_us) / 1_000_000

    def _grant_args(self) -> list[float | int | str]:
        window_us, burst = self._window
        slice_us, slice_burst = self._slice
        return [
            self.qps,
            window_us,
            burst,
            slice_us,
            slice_burst,
            self._cleans,
            self._clean_since if self._cleans else 0,
            -1 if self._cap is None else self._cap,
            self._member,
            self._today[1],
            STATE_TTL_SECONDS * 1000,
            DAY_KEY_SECONDS * 1000,
            f"{self._member}:{next(self._names)}",
            ratelimit.RECOVER_TO,
            ratelimit.RECOVER_GAIN,
            ratelimit.RECOVER_STEP,
            ratelimit.PROBE_GAIN,
            ratelimit.PROBE_STEP,
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
                f"{now - self._down_since:.0f} s ({type(exc).__name__}); is it running?"
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


_FLEETS: dict[tuple[str, str, float, int | None], FleetLimiter] = {}
_FLEETS_LOCK = threading.Lock()


def fleet_limiter(
    state_url: str, scope: str, qps: float, max_calls_per_day: int | None
) -> FleetLimiter:
    """The process-wide :class:`FleetLimiter` of ``scope`` in the Redis of ``state_url``."""
    if not math.isfinite(qps) or qps <= 0:
        raise ValueError(f"qps must be positive, got {qps}")
    with _FLEETS_LOCK:
        key = (state_url, scope, qps, max_calls_per_day)
        limiter = _FLEETS.get(key)
        if limiter is None:
            client, prefix = connect(state_url)
            limiter = _FLEETS[key] = FleetLimiter(
                client=client,
                prefix=prefix,
                scope=scope,
                qps=qps,
                max_calls_per_day=max_calls_per_day,
            )
        return limiter
