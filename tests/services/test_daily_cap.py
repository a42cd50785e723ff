"""The fleet's daily cap: two transformers share ``--max-calls-per-day`` through Redis, stop
when it is used up, and leave the batches they could not finish in the queue."""

from __future__ import annotations

import pytest
from geocoders.fake_api import FakeApi
from workers import depths, etl4all, finish

from etl4all.broker import queues

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.slow]

CAP = 400
"""Below the ~1,000 distinct coordinates of the stack's 4 point batches."""
CHECK = 1
"""The start-up check's request of each transformer (outside the cap)."""


def test_the_daily_cap_stops_the_fleet_and_keeps_the_batches(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "init-db"))  # a paid transformer reads the answers kept there
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    before = depths(stack)
    assert before[queues.POINTS] == 4
    with FakeApi() as api:
        env = {
            **stack,
            "ETL4ALL_GEOCODER": "google",
            "ETL4ALL_GOOGLE_URL": api.google_url,
            "GOOGLE_MAPS_API_KEY": str(api.key),
            "ETL4ALL_QPS": "400",
        }
        fleet = [
            etl4all(env, "run-stage", "transform", "--once", "--max-calls-per-day", str(CAP))
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=60)[0] for worker in fleet]
    for worker, out in zip(fleet, outputs, strict=True):
        assert worker.returncode == 1, out
        assert "daily cap of 400 API calls" in out and str(api.key) not in out
        assert "given back" in out
    assert CAP <= api.calls <= CAP + 2 * CHECK  # the cap was used, and not passed
    after = depths(stack)
    # no batch was lost or dead-lettered: each is either still queued or was published on
    assert after[queues.DEAD] == 0
    assert 1 <= after[queues.POINTS] <= before[queues.POINTS]
    finished = before[queues.POINTS] - after[queues.POINTS]
    assert after[queues.ADDRESSES] >= before[queues.ADDRESSES] + finished
