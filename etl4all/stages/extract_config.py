"""What the extract stage is set up with, and the rules about a file it decides by.

:class:`ExtractConfig` holds the batch size, the lease, settle and poll times, and the file
globs of the one-off flags; its methods say whether a file is done, final, forced, or may
shrink. :mod:`etl4all.stages.extract` and :mod:`etl4all.stages.filework` both ask them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping

from etl4all.broker.base import MAX_BYTES
from etl4all.settings import DEFAULTS
from etl4all.sources.base import FileRef
from etl4all.state.base import FileMark


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """What the extract stage needs to know (the defaults are ``Settings``')."""

    scope: str
    """Whose done marks these are: the redacted warehouse URL (a new warehouse redoes all)."""
    batch_rows: int = DEFAULTS.batch_rows
    """Max points per batch."""
    max_bytes: int = MAX_BYTES
    """Max size of a batch's encoded body."""
    lease_seconds: float = DEFAULTS.lease_seconds
    """A claim on a file expires after this long unless renewed; a heartbeat renews it every
    third of that while the file is worked on, so a crashed worker's file waits this long."""
    settle_seconds: float = DEFAULTS.settle_seconds
    """When polling, a file is taken once two listings this far apart agree on it."""
    poll_interval: float = DEFAULTS.poll_interval
    """Seconds between two listings when polling."""
    once: bool = DEFAULTS.once
    """Poll once (two listings ``settle_seconds`` apart) instead of until stopped."""
    final_seconds: float = DEFAULTS.final_seconds
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

    def forced(self, ref: FileRef) -> bool:
        """Whether ``ref`` is to be redone whatever its done mark says."""
        return self.force_all or _matches(ref, self.force_files)

    def accepts_shrink(self, ref: FileRef) -> bool:
        """Whether a shrink of ``ref`` to a prefix is to be applied (not held)."""
        return _matches(ref, self.accept_shrink)

    def scoped(self, refs: Iterable[FileRef]) -> list[FileRef]:
        """``refs`` with their keys scoped to the warehouse (the password never enters a key):
        a file done for one warehouse is still new work for another."""
        prefix = self.scope + " <- "
        return [dataclasses.replace(ref, key=prefix + ref.key) for ref in refs]

    def pending(
        self, refs: Iterable[FileRef], done: Mapping[str, FileMark], now: float
    ) -> list[FileRef]:
        """Those of ``refs`` (scoped, with their done marks ``done``) forced, not done with
        this size, mtime and etag, or done without a cut-off last record and final ``now``."""
        return [
            ref for ref in refs if self.forced(ref) or not self.is_done(done.get(ref.key), ref, now)
        ]

    def is_done(self, mark: FileMark | None, ref: FileRef, now: float) -> bool:
        """Whether ``ref`` (done mark ``mark``) needs no work at ``now``."""
        listed = (ref.size, ref.mtime, ref.etag)
        if mark is None or (mark.size, mark.mtime, mark.etag) != listed or mark.unfinished:
            return False
        return mark.partial_since is None or not self.final(ref, mark.partial_since, now)

    def final(self, ref: FileRef, seen_since: float | None, now: float) -> bool:
        """Whether ``ref`` is final at ``now``: its mtime, or ``seen_since`` (when the ledger
        first saw this content, if it did), is at least ``final_seconds`` old.

        The ledger's time keeps a file whose mtime lies in the future (a server clock ahead,
        a wrong FTP ``utc_offset``) from waiting for ever.
        """
        wait = self.final_seconds
        return now - ref.mtime >= wait or (seen_since is not None and now - seen_since >= wait)


def _matches(ref: FileRef, patterns: tuple[str, ...]) -> bool:
    """Whether ``ref``'s name matches one of the globs ``patterns``."""
    return any(fnmatch.fnmatchcase(ref.name, pattern) for pattern in patterns)
