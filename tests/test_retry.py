"""Unit tests of the one retry policy (retry.py): what is retried, how long, how often."""

from __future__ import annotations

import random
import threading

import pytest
import tenacity
from virtual_clock import VirtualClock

from etl4all import retry
from etl4all.errors import (
    ConfigError,
    GeocodeAuthError,
    GeocodeTimeoutError,
    GeocodeUnavailableError,
    RateLimitedError,
    WarehouseError,
)


class Flaky:
    """A function that raises the given errors in turn, then returns its call count."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.calls


class Foreign(Exception):
    """Not an etl4all error, whatever its attribute says."""

    retryable = True


def no_sleep(seconds: float) -> None:
    """A sleep that does not wait."""


def _state(attempt: int, exc: BaseException) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_retryable_is_the_class_attribute_of_etl4all_errors() -> None:
    assert retry.is_retryable(RateLimitedError("x"))
    assert retry.is_retryable(GeocodeTimeoutError("x"))
    assert retry.is_retryable(WarehouseError("x"))
    assert not retry.is_retryable(GeocodeAuthError("x"))
    assert not retry.is_retryable(ConfigError("x"))
    assert not retry.is_retryable(Foreign("x"))
    assert not retry.is_retryable(OSError("x"))


def test_full_jitter_is_exponential_and_capped() -> None:
    wait = retry.full_jitter(0.5, 4.0, rng=random.Random(3))
    error = GeocodeUnavailableError("down")
    for attempt, high in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [wait(_state(attempt, error)) for _ in range(200)]
        assert all(0 <= d <= high for d in delays)
        assert max(delays) > 0.8 * high  # spread over the whole range: full jitter
        assert min(delays) < 0.2 * high


def test_full_jitter_honours_retry_after_up_to_the_cap() -> None:
    wait = retry.full_jitter(0.5, 30.0)
    assert wait(_state(1, RateLimitedError("x", retry_after=5))) >= 5
    assert wait(_state(1, RateLimitedError("x", retry_after=500))) == 30.0
    assert wait(_state(1, RateLimitedError("x", retry_after=None))) <= 0.5


def test_retryable_errors_are_retried_until_success() -> None:
    flaky = Flaky(GeocodeUnavailableError("a"), WarehouseError("b"))
    assert retry.retrying(attempts=5, sleep=no_sleep)(flaky) == 3
    assert flaky.calls == 3


@pytest.mark.parametrize("error", [GeocodeAuthError("denied"), ConfigError("bad"), Foreign("x")])
def test_other_errors_are_raised_at_once(error: BaseException) -> None:
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        retry.retrying(attempts=5, sleep=no_sleep)(flaky)
    assert flaky.calls == 1


def test_attempts_bound_the_calls_and_the_last_error_is_raised() -> None:
    flaky = Flaky(*(GeocodeUnavailableError(f"try {i}") for i in range(1, 10)))
    hooked: list[int] = []
    with pytest.raises(GeocodeUnavailableError, match="try 3"):
        retry.retrying(
            attempts=3,
            sleep=no_sleep,
            before_sleep=lambda state: hooked.append(state.attempt_number),
        )(flaky)
    assert flaky.calls == 3
    assert hooked == [1, 2]  # one hook per wait, none after the last attempt


def test_waits_honour_retry_after_up_to_the_cap() -> None:
    waits: list[float] = []
    flaky = Flaky(RateLimitedError("x", retry_after=4), RateLimitedError("x", retry_after=99))
    retry.retrying(attempts=5, base=0.01, cap=10.0, sleep=waits.append)(flaky)
    assert waits[0] >= 4.0
    assert waits[1] == 10.0


def test_max_seconds_ends_retrying() -> None:
    clock = VirtualClock()
    flaky = Flaky(*(GeocodeUnavailableError("x") for _ in range(100)))

    def slow_sleep(seconds: float) -> None:
        clock.advance(0.02)

    with pytest.raises(GeocodeUnavailableError):
        retry.retrying(attempts=100, max_seconds=0.05, sleep=slow_sleep, clock=clock)(flaky)
    assert flaky.calls == 4  # attempts at 0, 0.02, 0.04 and 0.06 s: the last one past 0.05


def test_stop_event_ends_retrying() -> None:
    stop = threading.Event()
    errors = [GeocodeUnavailableError(str(i)) for i in range(10)]

    def fails_then_stops() -> None:
        if len(errors) == 9:
            stop.set()  # a SIGTERM arrives during the second call
        raise errors.pop(0)

    with pytest.raises(GeocodeUnavailableError, match="1"):
        retry.retrying(attempts=10, stop_event=stop, sleep=no_sleep)(fails_then_stops)
    assert len(errors) == 8


def test_stop_event_cuts_the_wait_short() -> None:
    clock, stop = VirtualClock(), threading.Event()
    started = clock.monotonic()
    flaky = Flaky(*(RateLimitedError("x", retry_after=20.0) for _ in range(100)))

    def stopper() -> None:
        clock.sleep(0.1)
        stop.set()

    threading.Thread(target=stopper).start()
    clock.until_waiting(1)
    with pytest.raises(RateLimitedError):
        retry.retrying(attempts=100, base=20.0, cap=20.0, stop_event=stop, clock=clock)(flaky)
    assert flaky.calls == 2 and clock.slept == [20.0]  # one wait of 20 s, cut at 0.1 s
    assert clock.monotonic() - started == pytest.approx(0.1)


def test_the_policy_of_a_hot_loop_is_the_same_policy() -> None:
    policy = retry.Policy(attempts=3, max_seconds=60.0, base=0.5, cap=30.0)
    limited = RateLimitedError("x", retry_after=2)
    assert all(2.0 <= (policy.wait(1, limited, 0.0) or 0) <= 30.0 for _ in range(50))
    down = GeocodeUnavailableError("down")
    waits = [policy.wait(2, down, 1.0) for _ in range(200)]
    assert all(w is not None and 0 <= w <= 1.0 for w in waits)  # full jitter up to base * 2
    assert policy.wait(3, down, 1.0) is None  # the third call was the last one
    assert policy.wait(1, down, 60.0) is None  # max_seconds passed since the first call
    assert policy.wait(1, GeocodeAuthError("denied"), 0.0) is None  # never retried
    assert policy.wait(1, Foreign("x"), 0.0) is None
