"""The run's progress bar: the time left moves while a batch is geocoded, never ahead."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from etl4all import frames
from etl4all.progress import RunBar
from etl4all.sources.base import FileRef
from etl4all.stages.batching import PointBatch

REF = FileRef(key="k", name="f.txt", size=1000, mtime=0.0)


def batch(points: int, share: float) -> PointBatch:
    """A batch of ``points`` rows standing for ``share`` bytes of the file."""
    rows = frames.empty(frames.POINTS_SCHEMA).clear(n=points)
    return PointBatch(
        ref=REF,
        index=0,
        batch_id="b",
        version=1,
        points=rows,
        rejects=frames.empty(frames.REJECTS_SCHEMA),
        share=share,
    )


def test_answers_move_the_bar_by_the_batchs_share_and_never_past_it() -> None:
    progress = Progress(console=Console(file=io.StringIO()))
    bar = RunBar(progress, paid=True)
    bar.files([REF])
    (task,) = progress.tasks
    first = batch(100, 600.0)
    bar.geocoding(first)
    bar.answers(50)  # half of its points answered
    assert task.completed == 300.0
    bar.answers(80)  # more answers than points (never ahead of the batch)
    assert task.completed == 600.0
    bar.batch(first)
    assert task.completed == 600.0
    second = batch(10, 400.0)
    bar.geocoding(second)
    bar.batch(second)  # no answers: the whole share at once
    assert task.completed == 1000.0
