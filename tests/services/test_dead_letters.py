"""`etl4all dead-letters list|replay|purge` and `status`'s exit code, against real RabbitMQ.

The workers are real `etl4all run-stage` processes; the commands run through CliRunner with
the test's unique queue prefix, Redis keys and database.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from workers import depths, etl4all, expected, finish, pipeline, table

from etl4all.broker import batch, queues
from etl4all.cli import cli
from etl4all.exits import ATTENTION as EXIT_DEAD_LETTERS
from etl4all.runners import wiring
from etl4all.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.slow]


def invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def letters(env: dict[str, str]) -> list[dict[str, object]]:
    code, output = invoke(env, "dead-letters", "list", "--json")
    assert code == 0, output
    found: list[dict[str, object]] = json.loads(output)
    return found


def test_a_worker_dead_letter_is_listed_replayed_and_purged(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "init-db"))
    prefix = stack["ETL4ALL_QUEUE_PREFIX"]
    frame = pl.DataFrame({"source": ["bad.txt"], "line": [1], "latitude": [1.0]})
    frame = frame.with_columns(longitude=2.0, distance_km=None, bearing_deg=None)
    body, headers = batch.encode(frame, kind="points", batch_id="bad-00000", source="bad.txt")
    with wiring.open_broker(Settings.load(environ=stack)) as bus:
        bus.publish(bus.topology.points, body[:-8] + b"garbage!", headers)
    finish(etl4all(stack, "run-stage", "transform", "--once"))

    code, output = invoke(stack, "status")
    assert code == EXIT_DEAD_LETTERS, output
    assert f"{prefix}.dead" in output and "1 dead letters wait" in output
    code, output = invoke(stack, "dead-letters", "list")
    assert code == 0, output
    assert f"{prefix}.points" in output and "bad.txt" in output and "bad-00000" in output
    assert "DataError" in output and "1 dead letter in" in output
    (letter,) = letters(stack)
    assert (letter["queue"], letter["source"], letter["rows"]) == (f"{prefix}.points", "bad.txt", 1)
    assert "sha256" in str(letter["reason"]) and letter["deaths"] == 1

    code, output = invoke(stack, "dead-letters", "replay", "--batch", "bad-00000")
    assert (code, output) == (0, f"sent 1 dead letter back to {prefix}.points\n")
    assert depths(stack) == {queues.POINTS: 1, queues.ADDRESSES: 0, queues.DEAD: 0}
    finish(etl4all(stack, "run-stage", "transform", "--once"))  # still corrupt: dies again
    (letter,) = letters(stack)
    assert letter["deaths"] == 2

    code, output = invoke(stack, "dead-letters", "purge", stdin="n\n")
    assert code == 1 and "Delete 1 dead letter" in output
    assert depths(stack)[queues.DEAD] == 1
    code, output = invoke(stack, "dead-letters", "purge", "--yes")
    assert (code, output) == (0, f"purged 1 dead letter from {prefix}.dead\n")
    code, output = invoke(stack, "status")
    assert code == 0 and "dead letters wait" not in output


def test_a_replayed_batch_is_loaded_by_the_workers(stack: dict[str, str], tmp_path: Path) -> None:
    finish(etl4all(stack, "init-db"))
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    settings = Settings.load(environ=stack)
    with wiring.open_broker(settings) as bus:
        delivery = next(iter(bus.consume(bus.topology.points, timeout=10)))
        source = delivery.headers["source"]
        delivery.reject(requeue=False, reason="GeocodeUnavailableError: connection refused")
    assert depths(stack)[queues.DEAD] == 1
    pipeline(stack)  # the other batches are loaded; the dead one waits
    assert table(stack).height < expected(tmp_path / "ftp").height

    code, output = invoke(stack, "status")
    assert code == EXIT_DEAD_LETTERS, output
    (letter,) = letters(stack)
    assert letter["source"] == source
    assert letter["reason"] == "GeocodeUnavailableError: connection refused"
    code, output = invoke(stack, "dead-letters", "replay", "--source", source)
    assert (code, output) == (0, f"sent 1 dead letter back to {settings.queue_prefix}.points\n")

    pipeline(stack)
    rows = table(stack)
    assert rows.height == expected(tmp_path / "ftp").height
    assert rows.select("latitude", "longitude").n_unique() == rows.height
    assert depths(stack) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}
    code, output = invoke(stack, "status")
    assert code == 0, output


def test_listed_secrets_are_redacted(stack: dict[str, str]) -> None:
    """Headers written by another tool (or an older version) may hold a URL's password."""
    with wiring.open_broker(Settings.load(environ=stack)) as bus:
        bus.publish(
            bus.topology.dead,
            b"x",
            {
                "batch_id": "s-00000",
                "source": "ftp://user:Pa55word@host/in.txt",
                "x-etl4all-error": "WarehouseError: mysql://root:Pa55word@db/etl4all is down",
                "x-etl4all-queue": bus.topology.addresses,
            },
        )
    for args in (["list"], ["list", "--json"], ["list", "-vv"]):
        code, output = invoke(stack, "dead-letters", *args)
        assert code == 0 and "s-00000" in output
        assert "Pa55word" not in output and "mysql://root:***@db" in output
    code, output = invoke(stack, "dead-letters", "replay", "-v")
    assert code == 0 and "replayed batch s-00000 of ftp://user:***@host/in.txt" in output
    assert "Pa55word" not in output
