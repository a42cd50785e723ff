"""Extract stage: a source's files → units of work, one per file.

A file is listed → settled (when polling: same size and mtime in two listings) → offered when
not done with this size and mtime (:meth:`Extractor.pending`) → taken
(:meth:`Extractor.take`): its :class:`~etl4all.stages.filework.FileWork` owns the rest of
its life, from the claim to the done mark.

Uploads that stall. Settling cannot tell a finished file from an upload paused for longer
than ``settle_seconds``, and such a file may end in the middle of a record, even of a number.
So a file is taken whole only once it is *final*: unchanged for ``final_seconds``, by its
mtime or by how long the ledger has seen this content. Before that, only its complete records
are read (:func:`etl4all.records.complete_end`) and its done mark says *partial*
(``FileMark.partial_since``): :meth:`Extractor.pending` offers the file again as soon as it
changes or becomes final, and then the cut-off tail is read as it is (a point or a reject).

A *forced* file (``run --force``, ``--force-file NAME``) skips both done checks: it is read and
loaded again whatever its mark says, which leaves the same rows (the load is idempotent) and
pays nothing twice (the geocode cache answers); its claim still applies. A poller never
forces: a forced file would be redone on every poll.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import logging
import threading
import time
from collections.abc import Callable

from etl4all import batch, retry
from etl4all.errors import ConfigError, Etl4allError
from etl4all.sources.base import FileRef, Source
from etl4all.sources.settle import by_key, settled
from etl4all.stages import polling
from etl4all.stages.filework import Busy, FileWork, Held
from etl4all.state.base import FileLedger, FileMark

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """What the extract stage needs to know."""

    scope: str
    """Whose done marks these are: the redacted warehouse URL (a new warehouse redoes all)."""
    batch_rows: int = 100_000
    """Max points per batch."""
    max_bytes: int = batch.MAX_BYTES
    """Max size of a batch's encoded body."""
    lease_seconds: float = 30.0
    """A claim on a file expires after this long unless renewed; a heartbeat renews it every
    third of that while the file is worked on, so a crashed worker's file waits this long."""
    settle_seconds: float = 2.0
    """When polling, a file is taken once two listings this far apart agree on it."""
    poll_interval: float = 10.0
    """Seconds between two listings when polling."""
    once: bool = False
    """Poll once (two listings ``settle_seconds`` apart) instead of until stopped."""
    final_seconds: float = 300.0
    """A file unchanged this long is final: its cut-off last record is read as it is. Before,
    only its complete records are (0: every file is final at once)."""
    force_all: bool = False
    """Redo every file even when its done mark says done (``run --force``)."""
    force_files: tuple[str, ...] = ()
    """Globs of file names (``FileRef.name``) to redo even when done (``run --force-file``)."""
    accept_shrink: tuple[str, ...] = ()
    """Globs of file names whose shrink to a prefix is applied, not held (``--accept-shrink``)."""
    ordered: bool = False
    """The driver applies a file's items in order, in one process (the embedded run): its
    prune goes by version, not by keys (:mod:`etl4all.stages.prune`)."""


@dataclasses.dataclass
class ExtractStats:
    """What an extractor did."""

    files: int = 0
    """Files read and parsed."""
    skipped: int = 0
    """Files found done once claimed (another worker finished them, or same content);
    files already done at listing time are left out by :meth:`Extractor.pending`."""
    busy: int = 0
    """Files claimed by another worker."""
    partial: int = 0
    """Files read without their cut-off last record (not final yet)."""
    pruned: int = 0
    """Files read again with other content, whose earlier version's leftovers are pruned."""
    held: list[Held] = dataclasses.field(default_factory=list)
    """Files that shrank to a prefix of the version loaded, held instead of pruned."""
    holders: list[Busy] = dataclasses.field(default_factory=list)
    """Who holds the busy files (those whose holder was still there to ask)."""
    batches: int = 0
    points: int = 0
    rejects: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    """Parse rejects by reason."""


class Extractor:
    """The extract stage over one source; see the module docstring.

    Args:
        source: where the files are; the caller opens and closes it.
        ledger: claims and done marks.
        config: batch size, lease and polling times, and the warehouse scope of the marks.
        clock: wall-clock seconds, as file mtimes count them (tests pass their own).
    """

    def __init__(
        self,
        *,
        source: Source,
        ledger: FileLedger,
        config: ExtractConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.ledger = ledger
        self.config = config
        self.stats = ExtractStats()
        self.clock = clock

    def listing(self) -> list[FileRef]:
        """The source's files, their keys scoped to the warehouse (the password never enters
        a key): a file done for one warehouse is still new work for another."""
        prefix = self.config.scope + " <- "
        return [dataclasses.replace(ref, key=prefix + ref.key) for ref in self.source.list_files()]

    def pending(self, refs: list[FileRef]) -> list[FileRef]:
        """Those of ``refs`` forced, not done with this size and mtime, or done without a
        cut-off last record and final now (one ledger round trip)."""
        done = self.ledger.done([ref.key for ref in refs])
        now = self.clock()
        return [
            ref for ref in refs if self.forced(ref) or not self.is_done(done.get(ref.key), ref, now)
        ]

    def take(self, ref: FileRef) -> FileWork:
        """The unit of work of ``ref`` (a context manager that claims it)."""
        return FileWork(self, ref)

    def forced(self, ref: FileRef) -> bool:
        """Whether ``ref`` is to be redone whatever its done mark says."""
        config = self.config
        return config.force_all or _matches(ref, config.force_files)

    def accepts_shrink(self, ref: FileRef) -> bool:
        """Whether a shrink of ``ref`` to a prefix is to be applied (not held)."""
        return _matches(ref, self.config.accept_shrink)

    def is_done(self, mark: FileMark | None, ref: FileRef, now: float) -> bool:
        """Whether ``ref`` (done mark ``mark``) needs no work at ``now``."""
        if mark is None or not _same_file(mark, ref):
            return False
        return mark.partial_since is None or not self.final(ref, mark.partial_since, now)

    def final(self, ref: FileRef, seen_since: float | None, now: float) -> bool:
        """Whether ``ref`` is final at ``now``: its mtime, or ``seen_since`` (when the ledger
        first saw this content, if it did), is at least ``final_seconds`` old.

        The ledger's time keeps a file whose mtime lies in the future (a server clock ahead,
        a wrong FTP ``utc_offset``) from waiting for ever.
        """
        wait = self.config.final_seconds
        return now - ref.mtime >= wait or (seen_since is not None and now - seen_since >= wait)

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
        heartbeat = polling.Heartbeat(self.source)

        def one_poll() -> None:
            nonlocal previous
            listing = self.listing()
            if previous is None:
                polling.check_forced(config.force_files, listing)
            if previous is not None:
                todo = self.pending(settled(previous, listing))
                heartbeat.polled(len(listing), len(todo))
                work(todo)
            previous = by_key(listing)

        if config.once:
            one_poll()
            if not stop.wait(interval):
                one_poll()
            return
        retrier = retry.retrying(
            attempts=None,  # until the poll succeeds or stop is set
            stop_event=stop,
            before_sleep=polling.log_failed_poll,
        )
        try:
            retrier(one_poll)
            while not stop.wait(interval):
                retrier(one_poll)
        except Etl4allError as error:
            if not (error.retryable and stop.is_set()):
                raise
            log.info("stopped while a poll was failing: %s", error)


def _matches(ref: FileRef, patterns: tuple[str, ...]) -> bool:
    """Whether ``ref``'s name matches one of the globs ``patterns``."""
    return any(fnmatch.fnmatchcase(ref.name, pattern) for pattern in patterns)


def _same_file(mark: FileMark | None, ref: FileRef) -> bool:
    """Whether ``ref`` was done with this size and mtime (``mark`` is its done mark)."""
    return mark is not None and (mark.size, mark.mtime) == (ref.size, ref.mtime)
