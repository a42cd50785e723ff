"""The HTTP runner of the API geocoders: session, event loop, concurrency, retries, abort.

A provider gives :meth:`HttpRunner.run` the request URL of one coordinate (:data:`UrlFn`) and
the mapping of one response to an :data:`Outcome` (:class:`Interpret`); the runner does the
rest: the rate (through the limiter), at most ``concurrency`` requests in flight (the first
alone, to prove the key), retries under one :class:`etl4all.retry.Policy`, the batch aborted
when a coordinate's retries run out, answers handed to ``on_results`` as they arrive (paid
once), secrets blanked in every error. It runs its own event loop. Why each rule:
docs/geocoding.md (How requests are made).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Protocol

import aiohttp
import polars as pl
import yarl

from etl4all import retry, urls
from etl4all.errors import (
    Etl4allError,
    GeocodeError,
    GeocodeTimeoutError,
    GeocodeUnavailableError,
    RateLimitedError,
)
from etl4all.geocoders.base import FAILED_SCHEMA, RESULT_SCHEMA, Geocoded, ResultSink
from etl4all.geocoders.outcomes import FLUSH_SECONDS, Failed, Outcome, RunState
from etl4all.quota.base import Limiter, Sleep
from etl4all.settings import DEFAULTS
from etl4all.timeouts import timed_out

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 120.0
"""Seconds: a key stops being retried once this long has passed since its first request."""
UrlFn = Callable[[float, float], yarl.URL]
"""The request URL of one coordinate (latitude, longitude)."""


class Interpret(Protocol):
    """A provider's response mapping: raises retryable errors, or fatal ones to abort."""

    def __call__(
        self, http_status: int, body: bytes, *, retry_after: str | None, where: object
    ) -> Outcome:
        """Map one response (``where`` shows the redacted request URL in messages)."""
        ...


@contextlib.contextmanager
def transport_errors(
    url: yarl.URL, *, connect_timeout: float | None = None, read_timeout: float | None = None
) -> Iterator[None]:
    """Map aiohttp and timeout errors of one request to ``url`` to retryable ``errors.py``
    classes; a timeout names the host, port and what timed out (``connect_timeout`` and
    ``read_timeout``: the session's, for the message).

    The messages name the redacted URL only: never the key, never the driver's own text
    (which may quote the full URL).
    """
    # ``from None``: some aiohttp errors quote the full URL, key included, in their text,
    # and a chained cause would print it in every traceback.
    try:
        yield
    except TimeoutError as exc:
        host, port = url.host or "?", url.port
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            what = "did not accept the connection"
            said = timed_out(host, port, what, connect_timeout, "--request-connect-timeout")
        elif isinstance(exc, aiohttp.SocketTimeoutError):
            said = timed_out(host, port, "did not answer", read_timeout, "--request-timeout")
        else:  # the whole request's bound: answers trickled in
            total = (connect_timeout or 0) + (read_timeout or 0) or None
            what = "did not send the whole answer"
            said = timed_out(host, port, what, total, "connect + request timeouts")
        raise GeocodeTimeoutError(f"request timed out: {said}: {Redacted(url)}") from None
    except aiohttp.ClientError as exc:
        name = type(exc).__name__
        raise GeocodeUnavailableError(f"request failed ({name}): {Redacted(url)}") from None


class HttpRunner:
    """Runs one GET per key of a frame; see the module docstring.

    Args:
        name: provider name, stored in the ``geocoder`` column and used in log lines.
        limiter: the shared QPS cap (the process's, or the fleet's in Redis).
        concurrency: max requests in flight.
        max_attempts: max requests per key (first try included).
        timeout: seconds a request waits for each read of the answer (aiohttp ``sock_read``).
        connect_timeout: seconds to open a connection (aiohttp ``sock_connect``); a request
            lasts at most ``connect_timeout + timeout`` in all.
        headers: sent with every request (e.g. User-Agent).
        sleep: async sleep for the backoff waits (default ``asyncio.sleep``); tests inject one.
        backoff_base, backoff_cap, max_retry_seconds: the backoff schedule.
        scrub: secrets to blank out of every error text (the API key), besides ``key=``.
    """

    def __init__(
        self,
        *,
        name: str,
        limiter: Limiter,
        concurrency: int,
        max_attempts: int,
        timeout: float,
        connect_timeout: float = DEFAULTS.request_connect_timeout,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep | None = None,
        backoff_base: float = retry.BACKOFF_BASE,
        backoff_cap: float = retry.BACKOFF_CAP,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        scrub: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.limiter = limiter
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.headers = dict(headers or {})
        self._sleep = sleep or asyncio.sleep
        self._retry = retry.Policy(max_attempts, max_retry_seconds, backoff_base, backoff_cap)
        """The retries of each key: one policy for all of them (no retrier per request)."""
        self._scrub = [s for s in scrub if s]
        self._proven = False
        """Whether the provider has answered a request of this runner: until then one
        request goes out alone (a refused key costs one request, not ``concurrency``)."""

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

    def run(
        self,
        keys: pl.DataFrame,
        url_for: UrlFn,
        interpret: Interpret,
        on_results: ResultSink | None = None,
    ) -> Geocoded:
        """GET ``url_for(lat, lon)`` for every key of ``keys`` (``KEYS_SCHEMA``).

        Args:
            on_results: given the answers as they arrive (see the module docstring).

        Raises:
            GeocodeError: the batch failed: the provider is unavailable (retryable), or
                refused us (bad key, quota, wrong URL).
        """
        lats = keys.get_column("latitude").to_list()
        lons = keys.get_column("longitude").to_list()
        state = RunState(on_results)
        slow_downs = self.limiter.report().slow_downs
        started = time.perf_counter()
        if lats:
            coroutine = self._run_all(lats, lons, url_for, interpret, state)
            try:
                if _loop_running():  # called from async code: never nest its loop
                    with concurrent.futures.ThreadPoolExecutor(1) as pool:
                        pool.submit(asyncio.run, coroutine).result()
                else:
                    asyncio.run(coroutine)
            finally:
                if state.retries:
                    log.warning(
                        "%s: %d retries for %d of %d coordinates (%s)",
                        self.name,
                        state.retries,
                        state.retried_keys,
                        len(lats),
                        ", ".join(f"{n} {cause}" for cause, n in state.causes.most_common()),
                    )
                self._tell_rate(slow_downs)
        seconds = time.perf_counter() - started
        return Geocoded(
            addresses=pl.DataFrame(state.columns, schema=RESULT_SCHEMA),
            failed=pl.DataFrame(state.failed, schema=FAILED_SCHEMA),
            calls=state.calls,
            retries=state.retries,
            seconds=seconds,
            rate_limited=state.rate_limited,
            rate=self.limiter.report(),
        )

    def _tell_rate(self, slow_downs: int) -> None:
        """One WARNING when the batch lowered the rate below ``qps``: the ``--qps`` to set."""
        report = self.limiter.report()
        suggested = report.suggested_qps
        if report.slow_downs > slow_downs and suggested is not None and report.peak is not None:
            log.warning(
                "%s: %s; the rate settled at %.1f QPS",
                self.name,
                rate_hint(report.qps, suggested),
                report.peak,
            )

    async def _run_all(
        self,
        lats: list[float],
        lons: list[float],
        url_for: UrlFn,
        interpret: Interpret,
        state: RunState,
    ) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        todo = iter(range(len(lats)))
        async with self._session() as session:

            async def attempt(lat: float, lon: float) -> Outcome:
                async with semaphore:
                    try:
                        started = await self.limiter.acquire()
                    except GeocodeError as exc:  # the fleet's daily cap: stop the batch
                        state.fatal = state.fatal or exc
                        raise
                    if state.fatal is not None:  # the batch is being aborted: no new request
                        raise _Aborted
                    state.calls += 1
                    try:
                        outcome = await self._get(session, url_for(lat, lon), interpret)
                    except GeocodeError as exc:  # one place that keeps secrets out of errors
                        if isinstance(exc, RateLimitedError):
                            state.rate_limited += 1
                            self._slowed(started, exc.retry_after)
                        exc.args = tuple(self.safe(str(arg)) for arg in exc.args)
                        if not type(exc).retryable:
                            state.fatal = exc
                        raise
                    self.limiter.clean(started)
                    return outcome

            async def worker() -> None:
                for i in todo:  # the workers share one iterator: each key is taken once
                    await self._one(lats[i], lons[i], attempt, state)

            if not self._proven:  # the key is proven by one request before the others go
                first = next(todo)
                await self._one(lats[first], lons[first], attempt, state)
                self._proven = True

            # Bounded number of tasks (not one per key); a key in backoff keeps its worker
            # but not its request slot, so spare workers keep the request slots busy.
            workers = min(len(lats), self.concurrency * 4)
            tasks = [asyncio.create_task(worker()) for _ in range(workers)]
            flusher = asyncio.create_task(state.flush_every(FLUSH_SECONDS))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = task.exception()
                    if error is not None:
                        raise state.fatal or error
            finally:
                for task in (*tasks, flusher):
                    task.cancel()
                await asyncio.gather(*tasks, flusher, return_exceptions=True)
                state.flush()

    def _slowed(self, started: float, retry_after: float | None) -> None:
        """An over-the-limit answer: tell the limiter; log when it lowered the rate."""
        if self.limiter.slowed(started, retry_after):
            report = self.limiter.report()
            log.info(
                "%s: over the rate limit at %.1f requests/s: lowered to %.1f (--qps %g)",
                self.name,
                report.peak or report.qps,
                report.rate,
                report.qps,
            )

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[aiohttp.ClientSession]:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        # A server that accepts and never answers trips sock_read; one that trickles its
        # answer, the total; each error names which (transport_errors).
        timeout = aiohttp.ClientTimeout(
            total=self.connect_timeout + self.timeout,
            sock_connect=self.connect_timeout,
            sock_read=self.timeout,
        )
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self.headers
        ) as session:
            yield session

    async def _get(
        self, session: aiohttp.ClientSession, url: yarl.URL, interpret: Interpret
    ) -> Outcome:
        where = Redacted(url)
        log.debug("%s GET %s", self.name, where)
        with transport_errors(url, connect_timeout=self.connect_timeout, read_timeout=self.timeout):
            async with session.get(url) as response:
                body = await response.read()
        return interpret(
            response.status, body, retry_after=response.headers.get("Retry-After"), where=where
        )

    async def _one(
        self,
        lat: float,
        lon: float,
        attempt: Callable[[float, float], Awaitable[Outcome]],
        state: RunState,
    ) -> None:
        """Geocode one key: its requests, retried by :attr:`_retry`, and its outcome."""
        started = time.monotonic()
        calls = 1
        while True:
            try:
                outcome = await attempt(lat, lon)
                break
            except Etl4allError as exc:
                wait = self._retry.wait(calls, exc, time.monotonic() - started)
                if wait is None:
                    if isinstance(exc, GeocodeError):
                        self._give_up(exc, lat, lon, calls, state)
                    raise
                state.retries += 1
                state.retried_keys += calls == 1
                state.causes[cause(exc)] += 1
                log.debug(
                    "%s retry %d/%d for %s in %.2fs: %s",
                    self.name,
                    calls,
                    self.max_attempts - 1,
                    shown(lat, lon),
                    wait,
                    self.safe(str(exc)),
                )
                await self._sleep(wait)
                calls += 1
        if isinstance(outcome, Failed):
            outcome = Failed(outcome.reason, self.safe(outcome.text))
        state.add(lat, lon, outcome, self.name)

    def _give_up(
        self, exc: GeocodeError, lat: float, lon: float, calls: int, state: RunState
    ) -> None:
        """A key's retries are used up: its error, reworded, is the one that aborts the run."""
        if not retry.is_retryable(exc) or state.fatal is not None:
            return
        what = (
            "kept answering over the rate limit"
            if isinstance(exc, RateLimitedError)
            else "unavailable"
        )
        exc.args = (
            f"{self.name} {what}: gave up on {shown(lat, lon)} after "
            f"{calls} requests: {exc}{self._quota_hint(exc)}",
        )
        state.fatal = exc

    def _quota_hint(self, exc: GeocodeError) -> str:
        """For a key given up over the rate limit: the rate reached and the ``--qps`` to set."""
        if not isinstance(exc, RateLimitedError):
            return ""
        report = self.limiter.report()
        suggested = report.suggested_qps
        if suggested is None:
            return f"; the rate is {report.rate:.1f} requests/s (--qps {report.qps:g})"
        hint = rate_hint(report.qps, suggested)
        return f"; the rate came down to {report.rate:.1f} requests/s: {hint}"


def rate_hint(qps: float, suggested: float) -> str:
    """The advice when the rate settled below ``--qps``."""
    return f"the key's quota is below --qps {qps:g}? set --qps {suggested:g}"


def degrees(value: float) -> str:
    """A coordinate as plain decimal text (never ``1e-05``), at most 8 decimals."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def shown(lat: float, lon: float) -> str:
    """A coordinate as it is sent to the provider: ``-30.029928,-51.2``."""
    return f"{degrees(lat)},{degrees(lon)}"


def cause(exc: BaseException | None) -> str:
    """A short name of why a request failed, for the per-batch retry summary."""
    if isinstance(exc, GeocodeTimeoutError):
        return "timeouts"
    if isinstance(exc, RateLimitedError):
        return "rate limited"
    text = str(exc)
    http = text.find("HTTP ")
    return text[http : http + 8] if http >= 0 else type(exc).__name__


class Redacted:
    """A request URL as errors and logs show it (:func:`etl4all.urls.redact`), redacted only
    when it is shown: most requests succeed, and their URL is never shown."""

    __slots__ = ("_url",)

    def __init__(self, url: yarl.URL) -> None:
        self._url = url

    def __str__(self) -> str:
        return urls.redact(str(self._url))


class _Aborted(Exception):
    """Raised instead of a request once the batch is being aborted (never retried)."""


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
