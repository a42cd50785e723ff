"""HTTP plumbing shared by the API geocoders: QPS cap, concurrency, retries, the event loop.

A provider module (``google.py``, ``nominatim.py``) only builds the request URL and maps the
response; :class:`HttpRunner` does the rest:

- **QPS cap.** One :class:`RateLimiter` per endpoint and per process (:func:`shared_limiter`),
  shared by every geocoder instance, thread and event loop of the process. It never lets more
  than ``qps`` requests start in any 1-second window (keeping a small safety margin, see the
  class), and spaces them evenly instead of letting them out in bursts. aiolimiter is not
  used because an ``AsyncLimiter`` is bound to one event loop, and its leaky bucket both
  allows an initial burst and loses capacity when the loop wakes up late.
- **Concurrency.** At most ``concurrency`` requests in flight (an ``asyncio.Semaphore``); a key
  waiting in backoff holds no request slot.
- **Slow down.** An OVER_QUERY_LIMIT or HTTP 429 pauses the shared limiter (``Retry-After``,
  else 1 s), so the whole process backs off, not only the coroutine that was told.
- **Retries.** tenacity, for errors whose class is ``retryable`` (``RateLimitedError``,
  ``GeocodeUnavailableError``, ``GeocodeTimeoutError``): exponential backoff with full jitter
  (``uniform(0, min(cap, base * 2**n))``), at least the server's ``Retry-After``, at most
  ``max_attempts`` requests per key and ``max_retry_seconds`` per key. A key that still fails
  becomes a ``failed`` row (reason ``geocode_failed``); the batch goes on.
- **Abort.** Any non-retryable ``GeocodeError`` (bad key, daily quota, wrong URL) cancels every
  in-flight request and is raised out of :meth:`HttpRunner.run`.
- **Event loop.** :meth:`HttpRunner.run` is synchronous: it runs its own event loop, in a helper
  thread when the calling thread already runs one.

Logging: DEBUG per request (URL redacted with :func:`etl4all.urls.redact`), WARNING per retry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import polars as pl
import tenacity

from etl4all import urls
from etl4all.errors import GeocodeError, RateLimitedError
from etl4all.geocoders.base import FAILED_SCHEMA, RESULT_SCHEMA, Geocoded
from etl4all.geocoders.http import Failed, Outcome, RequestFn

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

BACKOFF_BASE = 0.5
"""Seconds: the first retry waits up to this long (full jitter)."""
BACKOFF_CAP = 30.0
"""Seconds: no single backoff wait is longer than this."""
RATE_LIMITED_PAUSE = 1.0
"""Seconds the whole process stops starting requests after an OVER_QUERY_LIMIT or 429."""
MAX_RETRY_SECONDS = 120.0
"""Seconds: a key stops being retried once this long has passed since its first request."""


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


def backoff_wait(
    base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP, *, rng: random.Random | None = None
) -> Callable[[tenacity.RetryCallState], float]:
    """A tenacity ``wait``: full jitter ``uniform(0, min(cap, base * 2**(n-1)))``.

    A ``retry_after`` carried by the error (``Retry-After`` header) is honoured, up to ``cap``.
    """
    uniform = (rng or random.Random()).uniform

    def wait(state: tenacity.RetryCallState) -> float:
        high = min(cap, base * 2 ** (state.attempt_number - 1))
        delay = uniform(0.0, high)
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, min(float(retry_after), cap))
        return delay

    return wait


def _is_retryable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retryable", False))


class HttpRunner:
    """Runs a provider's request function over a frame of keys; see the module docstring.

    Args:
        name: provider name, stored in the ``geocoder`` column.
        limiter: the shared QPS cap.
        concurrency: max requests in flight.
        max_attempts: max requests per key (first try included).
        timeout: seconds for one request, connection included.
        headers: sent with every request (e.g. User-Agent).
        sleep: async sleep for the backoff waits (default ``asyncio.sleep``); tests inject one.
        backoff_base, backoff_cap, max_retry_seconds: the backoff schedule.
        scrub: secrets to blank out of every error text (the API key), besides ``key=``.
    """

    def __init__(
        self,
        *,
        name: str,
        limiter: RateLimiter,
        concurrency: int,
        max_attempts: int,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        scrub: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.limiter = limiter
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._sleep = sleep or asyncio.sleep
        self._wait = backoff_wait(backoff_base, backoff_cap)
        self._max_retry_seconds = max_retry_seconds
        self._scrub = [s for s in scrub if s]

    def __repr__(self) -> str:
        return (
            f"HttpRunner(name={self.name!r}, limiter={self.limiter!r}, "
            f"concurrency={self.concurrency}, max_attempts={self.max_attempts})"
        )

    def safe(self, text: str) -> str:
        """``text`` with ``key=`` values, URL passwords and the scrubbed secrets hidden."""
        text = urls.redact(text)
        for secret in self._scrub:
            text = text.replace(secret, "***")
        return text

    def run(self, keys: pl.DataFrame, request: RequestFn) -> Geocoded:
        """Geocode every key of ``keys`` (``KEYS_SCHEMA``) with ``request``.

        Raises:
            GeocodeError: a non-retryable error (bad key, quota, wrong URL) stopped the batch.
        """
        lats = keys.get_column("latitude").to_list()
        lons = keys.get_column("longitude").to_list()
        state = _RunState()
        started = time.perf_counter()
        if lats:
            coroutine = self._run_all(lats, lons, request, state)
            if _loop_running():  # called from async code: never nest its loop
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, coroutine).result()
            else:
                asyncio.run(coroutine)
        seconds = time.perf_counter() - started
        return Geocoded(
            addresses=pl.DataFrame(state.columns, schema=RESULT_SCHEMA),
            failed=pl.DataFrame(state.failed, schema=FAILED_SCHEMA),
            calls=state.calls,
            retries=state.retries,
            seconds=seconds,
        )

    async def _run_all(
        self, lats: list[float], lons: list[float], request: RequestFn, state: _RunState
    ) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        todo = iter(range(len(lats)))
        async with self._session() as session:

            async def attempt(lat: float, lon: float) -> Outcome:
                async with semaphore:
                    await self.limiter.acquire()
                    state.calls += 1
                    try:
                        return await request(session, lat, lon)
                    except GeocodeError as exc:  # one place that keeps secrets out of errors
                        if isinstance(exc, RateLimitedError):
                            self.limiter.pause(exc.retry_after or RATE_LIMITED_PAUSE)
                        exc.args = tuple(self.safe(str(arg)) for arg in exc.args)
                        raise

            async def worker() -> None:
                for i in todo:  # the workers share one iterator: each key is taken once
                    await self._one(lats[i], lons[i], attempt, state)

            # Bounded number of tasks (not one per key); a key in backoff keeps its worker
            # but not its request slot, so spare workers keep the request slots busy.
            workers = min(len(lats), self.concurrency * 4)
            tasks = [asyncio.create_task(worker()) for _ in range(workers)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = task.exception()
                    if error is not None:
                        raise error
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[aiohttp.ClientSession]:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self.headers
        ) as session:
            yield session

    async def _one(
        self,
        lat: float,
        lon: float,
        attempt: Callable[[float, float], Awaitable[Outcome]],
        state: _RunState,
    ) -> None:
        def before_sleep(retry: tenacity.RetryCallState) -> None:
            state.retries += 1
            exc = retry.outcome.exception() if retry.outcome is not None else None
            log.warning(
                "%s retry %d/%d for %r,%r in %.2fs: %s",
                self.name,
                retry.attempt_number,
                self.max_attempts - 1,
                lat,
                lon,
                retry.upcoming_sleep,
                self.safe(str(exc)),
            )

        retrying = tenacity.AsyncRetrying(  # one per key: tenacity keeps per-call state on it
            stop=tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self._max_retry_seconds),
            wait=self._wait,
            retry=tenacity.retry_if_exception(_is_retryable),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        outcome: Outcome
        try:
            outcome = await retrying(attempt, lat, lon)
        except GeocodeError as exc:
            if not exc.retryable:
                raise
            log.warning("%s gave up on %r,%r: %s", self.name, lat, lon, self.safe(str(exc)))
            outcome = Failed("geocode_failed", str(exc))
        if isinstance(outcome, Failed):
            outcome = Failed(outcome.reason, self.safe(outcome.text))
        state.add(lat, lon, outcome, self.name)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _RunState:
    """Counters and output columns of one run (one event loop: no locking needed)."""

    def __init__(self) -> None:
        self.calls = 0
        self.retries = 0
        self.columns: dict[str, list[Any]] = {name: [] for name in RESULT_SCHEMA}
        self.failed: dict[str, list[Any]] = {name: [] for name in FAILED_SCHEMA}

    def add(self, lat: float, lon: float, outcome: Outcome, name: str) -> None:
        """Append one key's outcome to the output columns."""
        if isinstance(outcome, Failed):
            for column, value in zip(
                FAILED_SCHEMA, (lat, lon, outcome.reason, outcome.text), strict=True
            ):
                self.failed[column].append(value)
            return
        row = {
            **outcome,
            "latitude": lat,
            "longitude": lon,
            "geocoder": name,
            "geocoded_at": datetime.now(UTC),
        }
        for column, values in self.columns.items():
            values.append(row.get(column))
