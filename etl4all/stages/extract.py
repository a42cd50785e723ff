"""Extract stage: a source's files → units of work, one per file.

A file is listed → settled (when polling: the same size and mtime in two listings) → offered
when not done with this size and mtime (:meth:`Extractor.pending`) → taken
(:meth:`Extractor.take`): its :class:`~etl4all.stages.filework.FileWork` owns the rest of its
life. A file not final yet is read up to its last complete record and marked *partial*; a
forced file skips the done checks, and a poller never forces. See docs/architecture.md (A
file's life) and docs/configuration.md (Uploads that stall).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from etl4all import liveness, retry
from etl4all.clock import REAL, Clock
from etl4all.counts import PROCESS, Counts
from etl4all.errors import ConfigError, Etl4allError
from etl4all.sources.base import FileRef, Source
from etl4all.sources.settle import by_key, settled
from etl4all.stages import polling
from etl4all.stages.extract_config import ExtractConfig
from etl4all.stages.filework import ExtractStats, FileWork
from etl4all.state.base import FileLedger

log = logging.getLogger(__name__)


class Extractor:
    """The extract stage over one source; see the module docstring.

    Args:
        source: where the files are; the caller opens and closes it.
        ledger: claims and done marks.
        config: batch size, lease and polling times, and the warehouse scope of the marks.
        clock: the wall time files are judged by (their mtimes), what leases read and wait
            on, and the wait between polls (tests pass a virtual one).
        counts: the record its counts add to (default: the process's).
    """

    def __init__(
        self,
        *,
        source: Source,
        ledger: FileLedger,
        config: ExtractConfig,
        clock: Clock = REAL,
        counts: Counts = PROCESS,
    ) -> None:
        self.source = source
        self.ledger = ledger
        self.config = config
        self.stats = ExtractStats(counts.child())
        self.clock = clock

    def listing(self) -> list[FileRef]:
        """The source's files, their keys scoped to the warehouse (:meth:`ExtractConfig.scoped`)."""
        return self.config.scoped(self.source.list_files())

    def pending(self, refs: list[FileRef]) -> list[FileRef]:
        """Those of ``refs`` that need work (:meth:`ExtractConfig.pending`; one ledger round
        trip)."""
        return self.config.pending(
            refs, self.ledger.done([ref.key for ref in refs]), self.clock.wall()
        )

    def take(self, ref: FileRef) -> FileWork:
        """The unit of work of ``ref`` (a context manager that claims it)."""
        return FileWork(
            ref,
            source=self.source,
            ledger=self.ledger,
            config=self.config,
            stats=self.stats,
            clock=self.clock,
        )

    def poll(self, stop: threading.Event, work: Callable[[list[FileRef]], None]) -> None:
        """Call ``work`` with the pending files that have settled, once per poll, until
        ``stop`` is set (after one poll with ``once``).

        A poll lists the source and hands ``work`` the pending files that two listings at
        least ``settle_seconds`` apart agree on. Long-running (without ``once``), a poll that
        fails with a retryable error (the source, the state store or the broker is down) is
        logged, one WARNING per failure, and done again after a full-jitter backoff until it
        succeeds or ``stop`` is set; its listing is compared with that of the last poll that
        succeeded, so the settle rule holds across an outage.

        Raises:
            Etl4allError: a non-retryable error (a configuration fault), or any error with
                ``once``.
            ConfigError: forced files without ``once`` (they would be redone on every poll),
                or a ``force_files`` glob that matches no file.
        """
        config = self.config
        if (config.force_all or config.force_files) and not config.once:
            raise ConfigError("forcing files needs one poll (--once): a poller would redo them")
        # Two listings at least settle_seconds apart tell a finished upload from one still
        # being written.
        interval = (
            config.settle_seconds
            if config.once
            else max(config.poll_interval, config.settle_seconds)
        )
        previous: dict[str, FileRef] | None = None
        heartbeat = polling.Heartbeat(self.source, self.clock)

        def one_poll() -> None:
            nonlocal previous
            listing = self.listing()
            liveness.PROCESS.progressed()
            if previous is None:
                polling.check_forced(config.force_files, listing)
            if previous is not None:
                todo = self.pending(settled(previous, listing))
                heartbeat.polled(len(listing), len(todo))
                work(todo)
            previous = by_key(listing)

        if config.once:
            one_poll()
            if not self.clock.wait(stop, interval):
                one_poll()
            return

        retrier = retry.retrying(
            attempts=None,  # until the poll succeeds or stop is set
            stop_event=stop,
            before_sleep=polling.log_failed_poll,
            clock=self.clock,
        )
        try:
            retrier(one_poll)
            while not self.clock.wait(stop, interval):
                retrier(one_poll)
        except Etl4allError as error:
            if not (error.retryable and stop.is_set()):
                raise
            log.info("stopped while a poll was failing: %s", error)
