"""Whether a worker still makes progress: what its liveness probe (``/healthz``) reads.

A worker says :meth:`Liveness.progressed` at each turn of its loop (a poll of its queue or
source) and at each step of a long batch (a geocoding answer, a piece of a file downloaded or
parsed). ``/healthz`` fails once nothing progressed for ``--stall-seconds``: a Kubernetes
liveness probe then restarts the worker, and the batch it held goes back to the queue. Every
network call has a timeout, so a healthy worker never goes that long without a step; one that
does is stuck where no timeout applies (a bug, or a PostgreSQL server that stops answering in
the middle of a statement). See docs/operations.md (Metrics and probes).
"""

from __future__ import annotations

from etl4all.clock import REAL, Clock


class Liveness:
    """The time of a worker's last step of progress; thread-safe (one float, written whole)."""

    def __init__(self, clock: Clock = REAL) -> None:
        self._clock = clock
        self._last = clock.monotonic()

    def progressed(self) -> None:
        """Note a step of progress now."""
        self._last = self._clock.monotonic()

    def silent_for(self) -> float:
        """Seconds since the last step of progress (or since this record was made)."""
        return self._clock.monotonic() - self._last


PROCESS = Liveness()
"""The process's record, which its loops and batches tell and its probe reads."""
