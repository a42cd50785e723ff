"""What the extractor's poll loop says and refuses: its heartbeat, its failed polls, and
``--force-file`` globs that match nothing."""

from __future__ import annotations

import fnmatch
import logging

import tenacity

from etl4all.clock import REAL, Clock
from etl4all.errors import ConfigError
from etl4all.sources.base import FileRef

log = logging.getLogger("etl4all.stages.extract")  # the extractor's own log lines


def check_forced(patterns: tuple[str, ...], refs: list[FileRef]) -> None:
    """Refuse a ``--force-file`` glob that matches none of ``refs`` (a typo would redo nothing).

    Raises:
        ConfigError: naming the globs that match no file.
    """
    names = [ref.name for ref in refs]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unmatched:
        raise ConfigError(
            f"--force-file {', '.join(unmatched)} matches no file of the sources "
            f"({len(names)} listed); give a name as listed (the source_file column) or a glob"
        )


HEARTBEAT_SECONDS = 300.0
"""A polling extractor says it is alive at INFO this often (every poll is logged at DEBUG)."""


class Heartbeat:
    """Logs each poll at DEBUG and, every :data:`HEARTBEAT_SECONDS`, a summary at INFO."""

    def __init__(self, source: object, clock: Clock = REAL) -> None:
        self._source = source
        self._clock = clock
        self._since = clock.monotonic()
        self._polls = self._taken = 0

    def polled(self, listed: int, taken: int) -> None:
        self._polls += 1
        self._taken += taken
        log.debug("poll: %d files listed, %d to do", listed, taken)
        now = self._clock.monotonic()
        if now - self._since >= HEARTBEAT_SECONDS:
            log.info(
                "still watching %s: %d polls, %d files taken in the last %.0f s; %d listed now",
                self._source,
                self._polls,
                self._taken,
                now - self._since,
                listed,
            )
            self._since = now
            self._polls = self._taken = 0


def log_failed_poll(state: tenacity.RetryCallState) -> None:
    """One WARNING per failed poll, saying when the next one is."""
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "poll failed (%d in a row): %s; polling again in %.1f s",
        state.attempt_number,
        error,
        state.upcoming_sleep,
    )
