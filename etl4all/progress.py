"""The progress bar of ``etl4all run`` on a terminal (rich), in bytes, points and API answers.

The bar advances as batches are committed (by each batch's share of its file's bytes), and
the API column moves every second while a batch is being geocoded, with the achieved QPS.
Log lines go above the bar, never through it (:mod:`etl4all.logs` writes to the current
``sys.stderr``, which the display redirects while it is live).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from etl4all.sources.base import FileRef

if TYPE_CHECKING:  # the extract stage imports Polars: not needed to draw a bar
    from etl4all.stages.batching import PointBatch


class RunBar:
    """A :class:`~etl4all.runners.embedded.RunProgress` drawn with rich."""

    def __init__(self, progress: Progress, paid: bool) -> None:
        self._progress = progress
        self._paid = paid
        self._task: TaskID | None = None
        self._points = 0
        self._answers = 0
        self._first_answer: float | None = None
        self._advanced: dict[str, float] = {}
        self._current: PointBatch | None = None
        self._credited = 0.0
        """Bytes of the current batch already shown as done while its answers came."""

    def files(self, refs: list[FileRef]) -> None:
        """Start the bar over the bytes of ``refs``."""
        self._task = self._progress.add_task(
            "run", total=sum(ref.size for ref in refs) or 1, points="", api="", name=""
        )

    def geocoding(self, batch: PointBatch) -> None:
        """``batch`` is being geocoded: its answers move the bar (and the time left) on."""
        self._current, self._credited = batch, 0.0

    def batch(self, batch: PointBatch) -> None:
        """Advance by what is left of the batch's share of its file."""
        self._points += batch.points.height
        left = batch.share - (self._credited if batch is self._current else 0.0)
        self._current, self._credited = None, 0.0
        self._advance(batch.ref, left, batch.ref.name)

    def answers(self, count: int) -> None:
        """Count API answers, show their rate, and move the bar by the current batch's share
        of them (one answer per point at most: the bar never runs ahead)."""
        now = time.monotonic()
        if self._first_answer is None:
            self._first_answer = now
        self._answers += count
        batch, by = self._current, 0.0
        if batch is not None and batch.points.height:
            by = min(batch.share * count / batch.points.height, batch.share - self._credited)
            self._credited += by
        self._advance(batch.ref if batch is not None else None, by, None)

    def file(self, ref: FileRef) -> None:
        """Complete the file's share (it may have had no batch: done by another worker)."""
        self._advance(ref, ref.size - self._advanced.get(ref.key, 0.0), ref.name)

    def _advance(self, ref: FileRef | None, by: float, name: str | None) -> None:
        if self._task is None:
            return
        if ref is not None:
            self._advanced[ref.key] = self._advanced.get(ref.key, 0.0) + by
        fields: dict[str, Any] = {"points": f"{self._points:,} points"}
        if self._paid and self._first_answer is not None:
            seconds = max(time.monotonic() - self._first_answer, 1e-9)
            fields["api"] = f"{self._answers:,} API answers ({self._answers / seconds:.1f}/s)"
        if name is not None:
            fields["name"] = name
        self._progress.update(self._task, advance=by, **fields)


@contextmanager
def run_bar(enabled: bool, paid: bool) -> Iterator[RunBar | None]:
    """A :class:`RunBar` on stderr while the block runs, or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[points]}"),
        TextColumn("{task.fields[api]}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[name]}"),
        console=Console(stderr=True),
        redirect_stderr=True,
        transient=True,
    )
    with progress:
        yield RunBar(progress, paid)
