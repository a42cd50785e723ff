"""The clock seam: code that reads the time or waits on it takes a :class:`Clock`.

Leases and their heartbeats, the extractor's polls, the SQLite ledger's expiries and the
embedded run's claim wait read and wait through a ``clock`` argument that defaults to
:data:`REAL`. Tests pass a virtual clock (``tests/virtual_clock.py``) and run in virtual time:
no sleeps, no wall-clock assertions.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Readings of the time, and waits on it."""

    def monotonic(self) -> float:
        """Seconds for durations and deadlines (``time.monotonic``)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (``time.time``): comparable with file mtimes and across
        the processes of a machine."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until ``event`` is set or ``seconds`` have passed; whether ``event`` is set."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class RealClock:
    """The machine's clock: :mod:`time` and :meth:`threading.Event.wait`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


REAL: Clock = RealClock()
"""The default clock of every seam."""
