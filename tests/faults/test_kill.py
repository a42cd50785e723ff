"""Fault scenario: SIGKILL of a random worker, ten times, each kill in the middle of its work.

The ten kills (three extractors, four transformers, three loaders) come in a random order.

Each kill waits until the chosen worker is busy, so that it loses work in progress:

- an extractor: a new file is dropped on the FTP server and the worker is killed as soon as
  it holds the file's claim (it has read the file and publishes its batches);
- a transformer: killed once the fake API has seen a random number (60-200) of its calls
  since the last look, in the middle of a batch (a file of 300 points is one batch): without
  the results cached as they arrive, each kill would lose 140 paid calls on average;
- a loader: stopped (SIGSTOP) until address batches wait for it, let go, and killed right
  after its first commit, while it loads the next batch it holds.

The supervisor restarts the killed worker, as compose would. Every file is done in the end,
each valid coordinate loaded once, and a killed transformer loses at most the few calls it
had not cached yet: calls ≤ 1.05 × distinct keys.
"""

from __future__ import annotations

import collections
import functools
import random
from pathlib import Path

import pytest
from harness import MARKS, Fleet, Pipeline

pytestmark = MARKS

SEED = 8
ORDER = ("extract",) * 3 + ("transform",) * 4 + ("load",) * 3
"""The ten kills, shuffled: every stage is hit several times."""


def test_sigkill_of_a_random_worker_ten_times(pipeline: Pipeline) -> None:
    pipeline.env["ETL4ALL_QPS"] = "120"  # about 30 s of geocoding to kill into
    pipeline.env["ETL4ALL_BATCH_ROWS"] = "300"
    # A killed extractor's file is taken over once its claim expires: 5 s instead of the
    # default keeps the scenario short (take-over after the default lease: tests/stages).
    pipeline.env["ETL4ALL_LEASE_SECONDS"] = "5"
    pipeline.put_files(files=8, points=300, seed=31)
    staged = pipeline.stage_files(files=len(ORDER) + 4, points=300, seed=32, prefix="late")
    fleet = pipeline.start()
    chance = random.Random(SEED)
    order = list(ORDER)
    chance.shuffle(order)
    kills: collections.Counter[str] = collections.Counter()
    for stage in order:
        (worker,) = fleet.of(stage)
        pipeline.wait_for(f"{worker.name} to be up", worker.ready, 30)
        if stage != "extract" and pipeline.probe.depths()["points"] < 2:
            pipeline.publish(staged.pop())  # keep work in the queues to kill into
        {"extract": _kill_extractor, "transform": _kill_transformer, "load": _kill_loader}[stage](
            pipeline, fleet, staged, chance
        )
        kills[stage] += 1
    pipeline.wait_for("every worker to be up", pipeline.ready, 30)
    pipeline.drain()
    figures = pipeline.verify()
    pipeline.report(f"kills={sum(kills.values())} ({dict(kills)}) {figures}")


def _kill_extractor(
    pipeline: Pipeline, fleet: Fleet, staged: list[Path], chance: random.Random
) -> None:
    (worker,) = fleet.of("extract")
    for _ in range(3):  # a small file can be done between two looks: drop another one
        path = staged.pop()
        pipeline.publish(path)
        pipeline.wait_for(
            f"the extractor to claim {path.name}",
            functools.partial(_claimed_or_done, pipeline, path.name),
            30,
            poll=0.005,
        )
        if _claimed(pipeline, path.name):
            fleet.kill(worker)
            return
    pytest.fail("the extractor finished three files before its claim could be seen")


def _claimed(pipeline: Pipeline, name: str) -> bool:
    """Whether a worker holds the claim on the file ``name``."""
    return any(key.endswith("/" + name) for key in pipeline.probe.claims())


def _claimed_or_done(pipeline: Pipeline, name: str) -> bool:
    """Whether the file ``name`` is claimed now, or already done."""
    return _claimed(pipeline, name) or pipeline.probe.is_done(name)


def _kill_transformer(
    pipeline: Pipeline, fleet: Fleet, staged: list[Path], chance: random.Random
) -> None:
    (worker,) = fleet.of("transform")
    calls = pipeline.api.calls + chance.randint(60, 200)
    pipeline.wait_for(
        "the transformer to call the API", lambda: pipeline.api.calls >= calls, 30, poll=0.005
    )
    fleet.kill(worker)


def _kill_loader(
    pipeline: Pipeline, fleet: Fleet, staged: list[Path], chance: random.Random
) -> None:
    (worker,) = fleet.of("load")
    fleet.pause(worker)
    try:
        pipeline.wait_for(
            "address batches to wait for the loader",
            lambda: pipeline.probe.depths()["addresses"] >= 1,  # and the two it holds
            30,
        )
        rows = pipeline.rows()
    finally:
        fleet.resume(worker)
    pipeline.wait_for("the loader to commit", lambda: pipeline.rows() > rows, 30, poll=0.005)
    fleet.kill(worker)
