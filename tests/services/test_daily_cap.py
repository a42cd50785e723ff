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
CONCURRENCY = 8
"""Requests in flight per transformer: a start counted when a batch aborts on the cap is
given up, not sent, so the server may see up to this many fewer calls per transformer."""


def counted_today(state_url: str) -> int:
    """The fleet's request starts of the day, as the shared counter in Redis holds them."""
    import redis

    base, prefix = state_url.split("?prefix=")
    client = redis.Redis.from_url(base)
    try:
        (key,) = client.scan_iter(match=f"{prefix}*:calls:*")
        return int(client.hget(key, "total") or 0)
    finally:
        client.close()


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
            "ETL4ALL_CONCURRENCY": str(CONCURRENCY),
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
    assert counted_today(stack["ETL4ALL_STATE_URL"]) == CAP  # the cap was used up
    assert CAP - 2 * CONCURRENCY <= api.calls <= CAP  # and never passed on the wire
    after = depths(stack)
    # no batch was lost or dead-lettered: each is either still queued or was published on
    assert after[queues.DEAD] == 0
    assert 1 <= after[queues.POINTS] <= before[queues.POINTS]
    finished = before[queues.POINTS] - after[queues.POINTS]
    assert after[queues.ADDRESSES] >= before[queues.ADDRESSES] + finished
