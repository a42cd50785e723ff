"""Start-up checks against the real services: a configuration fault stops a command before it
takes a message or claims a file, so restarts never count deliveries and nothing is marked done.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from geocoders.fake_api import FakeApi
from workers import count, depths, etl4all, expected, finish, table

from etl4all.broker import queues
from etl4all.broker.base import DELIVERY_COUNT_HEADER
from etl4all.cli import cli
from etl4all.runners import wiring
from etl4all.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq]

WRONG_KEY = "wrong-key-for-the-check-test-0000000"


def google(env: dict[str, str], api: FakeApi, key: str | None = WRONG_KEY) -> dict[str, str]:
    return {
        **env,
        "ETL4ALL_GEOCODER": "google",
        "ETL4ALL_GOOGLE_URL": api.google_url,
        "GOOGLE_MAPS_API_KEY": key or "",
        "ETL4ALL_QPS": "1000",
    }


def claims_and_done(env: dict[str, str]) -> tuple[int, int]:
    """(claims held, files marked done) in the Redis state of ``env``."""
    settings = Settings.load(environ=env)
    prefix = env["ETL4ALL_STATE_URL"].rpartition("prefix=")[2]
    client = redis.Redis.from_url(env["ETL4ALL_STATE_URL"].partition("?")[0])
    try:
        claims = sum(1 for _ in client.scan_iter(match=f"{prefix}claim:*"))
    finally:
        client.close()
    with wiring.open_state(settings) as store:
        return claims, store.done_count()


@pytest.mark.slow
def test_a_transformer_with_a_wrong_key_exits_2_at_its_first_request_and_keeps_the_batch(
    stack: dict[str, str],
) -> None:
    finish(etl4all(stack, "init-db"))  # a paid transformer checks the warehouse too
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    before = depths(stack)
    assert before[queues.POINTS] == 4
    with FakeApi() as api:
        for _ in range(3):  # as compose restarts it
            worker = etl4all(google(stack, api), "run-stage", "transform")
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 2, out
        assert api.calls == 3  # one request per start, alone: no start-up request for a point
    assert "REQUEST_DENIED" in out and WRONG_KEY not in out
    assert depths(stack) == before  # the batch taken was given back
    settings = Settings.load(environ=stack)
    with wiring.open_broker(settings) as bus:
        taken = []
        for delivery in bus.consume(bus.topology.points, timeout=3):
            taken.append((delivery.redelivered, delivery.headers.get(DELIVERY_COUNT_HEADER)))
            delivery.ack()
    assert taken == [(False, None)] * 4  # never delivered before: no restart counted


@pytest.mark.slow
def test_the_right_key_after_wrong_key_restarts_loads_everything(
    stack: dict[str, str], tmp_path: Path
) -> None:
    finish(etl4all(stack, "init-db"))
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    with FakeApi() as api:
        for _ in range(3):  # restarted by compose; none may count a delivery
            worker = etl4all(google(stack, api), "run-stage", "transform")
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 2, out
        right = google(stack, api, key=api.key)
        finish(etl4all(right, "run-stage", "transform", "--once"))
    finish(etl4all(stack, "run-stage", "load", "--once"))
    assert depths(stack) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}
    assert table(stack).height == expected(tmp_path / "ftp").height


@pytest.mark.slow
def test_a_loader_before_init_db_exits_2_naming_it(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    finish(etl4all(stack, "run-stage", "transform", "--once"))
    before = depths(stack)
    assert before[queues.ADDRESSES] > 0
    worker = etl4all(stack, "run-stage", "load")
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 2, out
    assert (
        "tables or columns missing (address, reject, source_file, address_source)" in out
        and "etl4all init-db" in out
    )
    assert "(1046" not in out and "(1146" not in out
    assert depths(stack) == before


def test_run_through_the_broker_with_a_wrong_key_keeps_the_batches_for_the_right_one(
    stack: dict[str, str], tmp_path: Path
) -> None:
    finish(etl4all(stack, "init-db"))
    with FakeApi() as api:
        result = CliRunner().invoke(cli, ["run", "-q"], env=google(stack, api))
        assert api.calls == 1  # the first request of the work, alone, proves the key wrong
        assert result.exit_code == 2, result.output
        assert "REQUEST_DENIED" in result.output and WRONG_KEY not in result.output
        assert depths(stack)[queues.POINTS] == 4 and depths(stack)[queues.DEAD] == 0
        right = CliRunner().invoke(cli, ["run", "-q"], env=google(stack, api, key=api.key))
    assert right.exit_code == 0, right.output
    assert depths(stack) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}
    assert count(stack, "address") > 0


@pytest.mark.parametrize("fault", ["tables", "key"])
def test_an_embedded_run_with_a_configuration_fault_marks_nothing(
    stack: dict[str, str], fault: str
) -> None:
    embedded = {k: v for k, v in stack.items() if k != "ETL4ALL_BROKER_URL"}
    with FakeApi() as api:
        if fault == "key":
            finish(etl4all(stack, "init-db"))
            env = google(embedded, api)
        else:
            env = google(embedded, api, key=api.key)
        result = CliRunner().invoke(cli, ["run", "-q"], env=env)
        calls = api.calls
    assert result.exit_code == 2, result.output
    if fault == "tables":
        assert "tables or columns missing" in result.output and "etl4all init-db" in result.output
        assert calls == 0  # found by the start-up check, before any request
    else:
        assert "REQUEST_DENIED" in result.output and calls == 1  # the work's first, alone
    assert claims_and_done(stack) == (0, 0)
