"""The QPS cap, the slow-down pause and the daily cap of a whole fleet, shared through Redis.

When the state store is Redis, every transformer that calls the same provider with the same key
and state URL shares one :class:`FleetLimiter` state in Redis, so five transformers with
``--qps 50`` together start at most 50 requests in any 1-second window, an OVER_QUERY_LIMIT or
HTTP 429 seen by one pauses all, and ``--max-calls-per-day`` counts the fleet's calls.

- **Window**: pyrate-limiter's ``RedisBucket`` (a sorted set checked and filled by one Lua
  script, its sliding-log algorithm). It holds two rates: the cap with the same safety margins
  as the in-process :class:`~etl4all.geocoders.ratelimit.RateLimiter` (``burst`` starts per
  ``window`` of 1.025 s), and a tenth of it per tenth of the window, so the fleet's requests are
  spread over the window rather than let out in one burst. A refused start is told how many
  milliseconds to wait by the same script call. The timestamps are the hosts' wall clocks
  (pyrate-limiter's choice), so a fleet spread over several hosts needs them NTP-synchronised.
- **Spacing**: each process also keeps its own in-process limiter at ``qps``, so its
  coroutines ask Redis at most ``qps`` times a second, evenly spaced, instead of all at once;
  and once Redis said "wait", none of them asks again before that time is up.
- **Pause**: ``{prefix}quota:{scope}:pause`` with a ``PX`` TTL; every start looks at it first.
- **Daily cap**: ``{prefix}quota:{scope}:day:{YYYY-MM-DD}`` (UTC day), ``INCR`` per request
  start; past the cap :class:`~etl4all.errors.DailyCapError` is raised (the batch is given
  back to the queue and the worker stops).

``scope`` is the provider name and a SHA-256 of the endpoint and API key: the key never
appears in Redis in clear. Redis errors become a retryable ``StoreError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterator

import redis
from pyrate_limiter import Rate, RateItem, RedisBucket

from etl4all.errors import DailyCapError, StoreError
from etl4all.geocoders.ratelimit import RateLimiter, Sleep
from etl4all.state.redis import REDIS_ERRORS, connect, describe

log = logging.getLogger(__name__)

SLICES = 10
"""The window's cap is also enforced per tenth of the window (when it is at least 10)."""
LEAK_EVERY = 1000
"""Grants between two removals of the window's expired entries (per process)."""
DAY_KEY_SECONDS = 2 * 86400
"""Lifetime of a daily counter: a day plus a margin."""


class FleetLimiter:
    """The :class:`~etl4all.geocoders.ratelimit.Limiter` of a fleet; thread-safe.

    Args:
        client: Redis client of the state URL.
        prefix: key prefix of the state URL.
        scope: provider and hashed key, see :func:`fleet_scope`.
        qps: the fleet's requests per second.
        max_calls_per_day: the fleet's request starts per UTC day (None: no cap).
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
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._local = RateLimiter(qps, sleep=sleep)
        self._client = client
        self._sleep = sleep
        self._keys = f"{prefix}quota:{scope}"
        self._cap = max_calls_per_day
        window_ms = round(self._local.window * 1000)
        rates = [Rate(self._local.burst, window_ms)]
        if self._local.burst >= SLICES:
            rates.insert(0, Rate(math.ceil(self._local.burst / SLICES), window_ms // SLICES))
        with self._errors("set up the QPS window"):
            self._bucket = RedisBucket.init(rates, client, f"{self._keys}:window")
        self._lock = threading.Lock()
        self._grants = 0
        self._retry_at = 0.0
        """Monotonic time before which this process does not ask Redis again."""

    @property
    def qps(self) -> float:
        """The fleet's request rate cap."""
        return self._local.qps

    def __repr__(self) -> str:
        return f"FleetLimiter(qps={self.qps}, max_calls_per_day={self._cap})"

    def pause(self, seconds: float) -> None:
        """Start no request anywhere in the fleet for ``seconds`` (the provider said slow down)."""
        self._local.pause(seconds)
        with self._errors("pause the fleet"):
            self._client.set(f"{self._keys}:pause", 1, px=max(1, round(seconds * 1000)))
        log.info("fleet paused for %.1f s: the provider asked to slow down", seconds)

    async def acquire(self) -> None:
        """Wait until the fleet may start one more request, and count it.

        Raises:
            DailyCapError: the fleet's ``max_calls_per_day`` is used up.
            StoreError: Redis failed (retryable).
        """
        while True:
            await self._local.acquire()
            wait = self._try()
            if wait <= 0:
                return
            await self._sleep(wait)

    def _try(self) -> float:
        """Take a start in the shared window: 0, or the seconds to wait before trying again."""
        with self._lock, self._errors("take a request start"):
            if (wait := self._retry_at - time.monotonic()) > 0:
                return wait
            paused = self._client.pttl(f"{self._keys}:pause")
            if isinstance(paused, int) and paused > 0:
                return self._wait(paused)
            now = self._bucket.now()
            decision = self._bucket.put_decision(RateItem("geocode", now))
            if not decision.allowed:
                return self._wait(max(1, decision.retry_after_ms or 1))
            self._grants += 1
            if self._grants % LEAK_EVERY == 0:
                self._bucket.leak(now)
            if self._cap is not None:
                self._count_today()
        return 0.0

    def _wait(self, milliseconds: int) -> float:
        """Ask Redis again in ``milliseconds`` (every coroutine of the process); in seconds."""
        self._retry_at = time.monotonic() + milliseconds / 1000
        return milliseconds / 1000

    def _count_today(self) -> None:
        day = dt.datetime.now(dt.UTC).date().isoformat()
        key = f"{self._keys}:day:{day}"
        pipe = self._client.pipeline()
        pipe.incr(key)
        pipe.expire(key, DAY_KEY_SECONDS)
        calls = int(pipe.execute()[0])
        if self._cap is not None and calls > self._cap:
            raise DailyCapError(
                f"the daily cap of {self._cap} API calls ({day} UTC, shared by every "
                "transformer of this key) is reached: no new batch is taken until it resets "
                "at 00:00 UTC or --max-calls-per-day is raised"
            )

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except REDIS_ERRORS as exc:
            said = describe(exc, self._client)
            raise StoreError(f"fleet limiter could not {action}: {said}") from exc

    def calls_today(self) -> int:
        """Request starts counted today (UTC) by the fleet (0 without a daily cap)."""
        day = dt.datetime.now(dt.UTC).date().isoformat()
        with self._errors("read the daily count"):
            return int(self._client.get(f"{self._keys}:day:{day}") or 0)


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
