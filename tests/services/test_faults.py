"""Fault tests: workers killed with SIGKILL mid-stream lose nothing and duplicate nothing."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from workers import depths, etl4all, expected, finish, table

from etl4all.broker import queues

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.mark.parametrize(
    ("stage", "queue"), [("transform", queues.POINTS), ("load", queues.ADDRESSES)]
)
def test_worker_killed_mid_stream_three_times_loads_everything_once(
    stage: str, queue: str, stack: dict[str, str], tmp_path: Path
) -> None:
    small = {**stack, "ETL4ALL_BATCH_ROWS": "25"}  # many small batches to kill into
    finish(etl4all(small, "init-db"))
    finish(etl4all(small, "run-stage", "extract", "--once"))
    if stage == "load":
        finish(etl4all(small, "run-stage", "transform", "--once"))
    assert depths(small)[queue] > 20
    chance = random.Random(7)
    for _ in range(3):
        waiting = depths(small)[queue]
        worker = etl4all(small, "run-stage", stage)
        deadline = time.monotonic() + 30
        while depths(small)[queue] >= waiting and time.monotonic() < deadline:
            time.sleep(0.02)  # until it has taken batches: then kill it in the middle of one
        time.sleep(chance.uniform(0.0, 0.1))
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        assert depths(small)[queue] > 0, "the worker finished before it could be killed"
    if stage == "transform":
        finish(etl4all(small, "run-stage", "transform", "--once"))
    finish(etl4all(small, "run-stage", "load", "--once"))
    rows = table(small)
    assert rows.height == expected(tmp_path / "ftp").height
    assert rows.select("latitude", "longitude").n_unique() == rows.height
    assert depths(small) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}
