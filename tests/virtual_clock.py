"""A virtual :class:`etl4all.clock.Clock` for tests: time moves only when the test moves it.

The thread that builds the clock (the test's) drives it: its ``sleep(s)`` and ``wait(event,
s)`` move time forward at once. Waits of other threads (a lease's heartbeat, a poller in a
thread) block until the driver moves time past their deadline; the driver moves time from one
such deadline to the next and, at each, waits until every thread it woke waits again or has
ended, so what they do at that instant is done before time goes on. A test thus runs the same
steps in the same order on every run, however loaded the machine.

A thread woken that never comes back to the clock (blocked elsewhere) fails the driver after
``STUCK_SECONDS`` of real time, naming it: a bug in the test, not a slow machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

STUCK_SECONDS = 30.0
"""Real seconds the driver waits for a woken thread to wait again (a safeguard only)."""
_POLL = 0.002
"""Real seconds between looks at an event that another thread may set."""


class VirtualClock:
    """A clock in virtual time (see the module docstring).

    Args:
        start: the time, as both :meth:`monotonic` and :meth:`wall` read it; by default the
            real wall time when it is built (file mtimes of the test are then "now").
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._driver = threading.current_thread()
        self._cond = threading.Condition()
        self._waiting: dict[threading.Thread, float] = {}
        """Threads other than the driver, waiting: their deadlines."""
        self._woken: set[threading.Thread] = set()
        """Threads the driver woke that have not waited again yet."""
        self.slept: list[float] = []
        """What the driver waited for, in order (sleeps and waits)."""
        self.listeners: list[Callable[[float], None]] = []
        """Called with each step time moves, before the threads due are woken (a server's
        expiries follow the clock: :mod:`redis_time`)."""

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def wall(self) -> float:
        return self.monotonic()

    def sleep(self, seconds: float) -> None:
        self.wait(threading.Event(), seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if threading.current_thread() is self._driver:
            self.slept.append(seconds)
            return self._advance(event, seconds)
        return self._block(event, seconds)

    def advance(self, seconds: float) -> None:
        """Move time ``seconds`` forward (the driver only)."""
        assert threading.current_thread() is self._driver, "only the driving thread moves time"
        self._advance(threading.Event(), seconds)

    def until_waiting(self, count: int) -> None:
        """Block (the driver) until ``count`` other threads wait on the clock: a thread just
        started is at its first wait before time moves."""
        deadline = time.monotonic() + STUCK_SECONDS
        with self._cond:
            while len(self._waiting) < count:
                assert time.monotonic() < deadline, f"{len(self._waiting)} of {count} waiting"
                self._cond.wait(_POLL)

    def _block(self, event: threading.Event, seconds: float) -> bool:
        """A wait of a thread that does not drive: until the driver moves time past it."""
        me = threading.current_thread()
        with self._cond:
            self._woken.discard(me)
            self._cond.notify_all()
            if seconds <= 0 or event.is_set():
                return event.is_set()
            self._waiting[me] = self._now + seconds
            try:
                while not event.is_set() and me not in self._woken:
                    self._cond.wait(_POLL)
            finally:
                del self._waiting[me]
            return event.is_set()

    def _advance(self, event: threading.Event, seconds: float) -> bool:
        """The driver's wait: time moves from deadline to deadline up to ``seconds`` on."""
        with self._cond:
            target = self._now + seconds
            while not event.is_set():
                due = [d for t, d in self._waiting.items() if t not in self._woken]
                step = max(self._now, min([d for d in due if d <= target], default=target))
                for listener in self.listeners:
                    listener(step - self._now)
                self._now = step
                for thread, deadline in self._waiting.items():
                    if deadline <= self._now:
                        self._woken.add(thread)
                self._cond.notify_all()
                self._settle()
                if self._now >= target:
                    break
            return event.is_set()

    def _settle(self) -> None:
        """Wait until every woken thread waits again or has ended."""
        stuck = time.monotonic() + STUCK_SECONDS
        while any(thread.is_alive() for thread in self._woken):
            if time.monotonic() > stuck:
                names = sorted(t.name for t in self._woken if t.is_alive())
                raise AssertionError(f"virtual clock: {names} never waited again")
            self._cond.wait(_POLL)
        self._woken.clear()
