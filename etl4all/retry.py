"""The one retry policy of etl4all: tenacity, full jitter, retryable errors only.

An error is retried when its class says so (``Etl4allError.retryable``, a class attribute).
Waits are "full jitter" (``uniform(0, min(cap, base * 2**(n-1)))``, the AWS Architecture Blog's
recommendation), never shorter than a ``retry_after`` the error carries (a ``Retry-After``
header), never longer than ``cap``. The same policy serves the worker (a batch retried in
process before it is requeued) and the AMQP reconnect loop, through tenacity (:func:`retrying`),
and the HTTP geocoder runner's loop over its requests, as a :class:`Policy`; each passes its own
schedule, clock seams and hooks.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import weakref
from collections.abc import Callable
from typing import Any

import tenacity

from etl4all.clock import REAL, Clock
from etl4all.errors import Etl4allError

BACKOFF_BASE = 0.5
"""Seconds: the first retry waits up to this long."""
BACKOFF_CAP = 30.0
"""Seconds: no single wait is longer than this."""

Hook = Callable[[tenacity.RetryCallState], None]


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is an etl4all error whose class is marked retryable."""
    return isinstance(exc, Etl4allError) and type(exc).retryable


def full_jitter(
    base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP, *, rng: random.Random | None = None
) -> Callable[[tenacity.RetryCallState], float]:
    """A tenacity ``wait``: full jitter, at least the error's ``retry_after`` (up to ``cap``).

    ``rng`` defaults to the ``random`` module's shared generator (no new one per retrier).
    """
    uniform = rng.uniform if rng is not None else random.uniform

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return backoff(state.attempt_number, exc, base, cap, uniform)

    return wait


def backoff(
    attempt: int,
    exc: BaseException | None,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first call): full
    jitter, at least the ``retry_after`` that ``exc`` carries, never more than ``cap``."""
    delay = uniform(0.0, min(cap, base * 2 ** (attempt - 1)))
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        delay = max(delay, min(float(retry_after), cap))
    return delay


@dataclasses.dataclass(frozen=True)
class Policy:
    """The policy as plain data, for a hot loop that retries many calls (the geocoder
    runner's requests): one object per runner, where a tenacity retrier keeps its state on
    itself and must be built per call.

    Args:
        attempts: calls at most, the first included.
        max_seconds: no retry once this long has passed since the first call.
        base, cap: the backoff schedule.
    """

    attempts: int
    max_seconds: float | None = None
    base: float = BACKOFF_BASE
    cap: float = BACKOFF_CAP

    def wait(self, attempt: int, exc: BaseException, elapsed: float) -> float | None:
        """Seconds to wait before the next call, after call number ``attempt`` failed with
        ``exc`` ``elapsed`` seconds after the first one started; None: give up, raise it."""
        if not is_retryable(exc) or attempt >= self.attempts:
            return None
        if self.max_seconds is not None and elapsed >= self.max_seconds:
            return None
        return backoff(attempt, exc, self.base, self.cap)


class _AfterSeconds(tenacity.stop.stop_base):
    """Stop once ``seconds`` have passed on ``clock`` since a call's first attempt began
    (tenacity's own ``stop_after_delay`` reads ``time.monotonic``)."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock, self._seconds = clock, seconds
        self._starts: weakref.WeakKeyDictionary[tenacity.RetryCallState, float]
        self._starts = weakref.WeakKeyDictionary()

    def begin(self, state: tenacity.RetryCallState) -> None:
        """Tenacity's ``before`` hook: note when the first attempt begins."""
        if state.attempt_number == 1:
            self._starts[state] = self._clock.monotonic()

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return self._clock.monotonic() - self._starts[state] >= self._seconds


def _policy(
    attempts: int | None,
    max_seconds: float | None,
    base: float,
    cap: float,
    stop_event: threading.Event | None,
    before_sleep: Hook | None,
    clock: Clock,
) -> dict[str, Any]:
    stop: tenacity.stop.stop_base = tenacity.stop_never
    before: Hook | None = None
    if attempts is not None:
        stop = stop | tenacity.stop_after_attempt(attempts)
    if max_seconds is not None:
        after = _AfterSeconds(clock, max_seconds)
        stop, before = stop | after, after.begin
    if stop_event is not None:
        stop = stop | tenacity.stop_when_event_set(stop_event)
    return {
        "stop": stop,
        "wait": full_jitter(base, cap),
        "retry": tenacity.retry_if_exception(is_retryable),
        "before": before,
        "before_sleep": before_sleep,
        "reraise": True,
    }


def retrying(
    *,
    attempts: int | None,
    max_seconds: float | None = None,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    stop_event: threading.Event | None = None,
    before_sleep: Hook | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Clock = REAL,
) -> tenacity.Retrying:
    """A synchronous retrier: call it with the function and its arguments.

    Args:
        attempts: calls at most, the first included (None: no limit; give a ``stop_event``).
        max_seconds: stop retrying once this long has passed since the first call.
        base, cap: the backoff schedule.
        stop_event: stop retrying once it is set (the wait ends early too).
        before_sleep: called before each wait (log, count).
        sleep: the wait (default: on ``clock``, ended early by ``stop_event`` when given).
        clock: what ``max_seconds`` is read on and the default ``sleep`` waits on.

    The last error is raised as it is once the policy gives up.
    """
    if sleep is None:
        sleep = clock.sleep if stop_event is None else _waiter(clock, stop_event)
    return tenacity.Retrying(
        sleep=sleep,
        **_policy(attempts, max_seconds, base, cap, stop_event, before_sleep, clock),
    )


def _waiter(clock: Clock, event: threading.Event) -> Callable[[float], None]:
    """A sleep on ``clock`` that ends early when ``event`` is set."""

    def sleep(seconds: float) -> None:
        clock.wait(event, seconds)

    return sleep
