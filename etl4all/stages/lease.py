"""A claim on a file, kept alive by a heartbeat for as long as the file is worked on.

The ledger's lease is short (``lease_seconds``, 30 s by default) so that the file of a crashed
extractor is taken over within about that long; while the holder works on the file, a daemon
thread renews the lease every third of it, however long the file's batches take downstream.

The claim counts as :attr:`Lease.lost` once a renewal finds it taken (it expired and another
worker claimed it) or once no renewal has succeeded for a whole lease (the store cannot be
reached: the lease may have run out). The holder then stops working on the file and leaves it
to whoever holds it now; every effect of a batch is idempotent, so a batch in flight at that
moment is harmless. A renewal that fails with a :class:`~etl4all.errors.StoreError` is logged
(WARNING) and tried again at the next beat. The lease reads and waits on its ``clock``
(:mod:`etl4all.clock`).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from etl4all import processes
from etl4all.clock import REAL, Clock
from etl4all.errors import StoreError
from etl4all.state.base import FileLedger, owner

log = logging.getLogger(__name__)

BEATS_PER_LEASE = 3
"""Renewals per lease: two can fail before the lease runs out."""


class Lease:
    """A claim on one file of a ledger; a context manager that renews it and releases it.

    Build it with :meth:`take`. Entering starts the heartbeat thread; leaving stops it and
    releases the claim (a release that fails is logged: the lease then simply expires).
    """

    def __init__(
        self,
        *,
        ledger: FileLedger,
        key: str,
        token: str,
        seconds: float,
        name: str,
        clock: Clock = REAL,
    ) -> None:
        self.ledger = ledger
        self.key = key
        self.token = token
        self.seconds = seconds
        self.name = name
        self.clock = clock
        self._renewed = clock.monotonic()
        self._taken = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {name}", daemon=True)

    @classmethod
    def take(
        cls, ledger: FileLedger, key: str, seconds: float, *, name: str, clock: Clock = REAL
    ) -> Lease | None:
        """Claim ``key`` for ``seconds``; the lease, or None when another worker holds it.

        A claim whose holder is a dead process of this host (:func:`etl4all.processes.dead`)
        is taken at once: a run killed a moment ago does not hold its files until they expire.

        Args:
            name: the file's name, for log lines.
            clock: what the lease reads and its heartbeat waits on.

        Raises:
            StoreError: the ledger failed.
        """
        asked = clock.monotonic()
        token = ledger.claim(key, seconds)
        if token is None:
            holder = ledger.holder(key)
            if holder is not None and processes.dead(holder.token):
                log.warning(
                    "file=%s: its claim is held by %s, a process that has ended; taken over",
                    name,
                    owner(holder.token),
                )
                token = ledger.claim(key, seconds, replace=holder.token)
        if token is None:
            return None
        lease = cls(ledger=ledger, key=key, token=token, seconds=seconds, name=name, clock=clock)
        lease._renewed = asked  # the lease runs from the request, not from its answer
        return lease

    @property
    def lost(self) -> bool:
        """Whether the claim was taken over, or not renewed for a whole lease."""
        return self._taken or self.clock.monotonic() - self._renewed >= self.seconds

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        # A renewal in flight ends within the store's timeout; a late one after the release
        # finds the token gone and changes nothing.
        self._thread.join(timeout=self.seconds)
        try:
            self.ledger.release(self.key, self.token)
        except StoreError as error:
            log.warning(
                "could not release the claim on file=%s (it expires within %.0f s): %s",
                self.name,
                self.seconds,
                error,
            )

    def _beat(self) -> None:
        """Renew the lease every ``seconds / BEATS_PER_LEASE`` until the holder is done."""
        try:
            while not self.clock.wait(self._done, self.seconds / BEATS_PER_LEASE):
                asked = self.clock.monotonic()
                try:
                    kept = self.ledger.renew(self.key, self.token, self.seconds)
                except StoreError as error:
                    log.warning("could not renew the claim on file=%s: %s", self.name, error)
                    continue
                if not kept:
                    log.warning("lost the claim on file=%s; another worker took it", self.name)
                    return
                self._renewed = asked
        finally:
            if not self._done.is_set():  # taken over, or a bug ended the heartbeat
                self._taken = True
