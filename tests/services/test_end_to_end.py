"""Services mode end to end: FTP → extract → RabbitMQ → transform → load → MariaDB.

Each stage runs as its own ``etl4all run-stage`` process against the real RabbitMQ, Redis
and MariaDB on loopback; the loader's lookup is mongomock (``mongomock://``), the FTP server
a real pyftpdlib server. Queue names, Redis keys and the database are unique per test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from geocoders.fake_api import FakeApi
from workers import count, depths, etl4all, expected, finish, pipeline, rejected, table

from etl4all.broker import queues
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.warehouse.read import read_warehouse

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.slow]

ADDRESS_COLUMNS = [
    "latitude",
    "longitude",
    "city",
    "state",
    "country",
    "geocoder",
    "geocode_status",
]


def test_workers_load_each_distinct_coordinate_once(stack: dict[str, str], tmp_path: Path) -> None:
    finish(etl4all(stack, "init-db"))
    pipeline(stack)
    rows = table(stack)
    want = expected(tmp_path / "ftp")
    assert rows.height == want.height
    assert rows.select("latitude", "longitude").n_unique() == rows.height
    assert set(rows.select(pl.col("latitude", "longitude").round(8)).rows()) == set(want.rows())
    assert depths(stack) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}
    rejects = rejected(tmp_path / "ftp")
    assert rejects > 0 and count(stack, "reject") == rejects

    # the same warehouse content as the embedded run on the same files
    embedded = tmp_path / "embedded.duckdb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "etl4all",
            "run",
            str(tmp_path / "ftp"),
            "-q",
            "--warehouse",
            f"duckdb:///{embedded}",
            "--state",
            f"sqlite:///{tmp_path}/s.db",
        ],
        check=True,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ETL4ALL_")},
    )
    local = read_warehouse(f"duckdb:///{embedded}").sort("latitude", "longitude")
    assert local.select(ADDRESS_COLUMNS).equals(rows.select(ADDRESS_COLUMNS))

    # a rerun processes nothing
    out = finish(etl4all(stack, "run-stage", "extract", "--once"))[0]
    assert "files=0 batches=0" in out
    assert depths(stack)[queues.POINTS] == 0

    # replaying every batch (the files forgotten by the state) changes nothing
    finish(
        etl4all(
            {**stack, "ETL4ALL_STATE_URL": stack["ETL4ALL_STATE_URL"] + "replay:"},
            "run-stage",
            "extract",
            "--once",
        )
    )
    finish(
        etl4all(stack, "run-stage", "transform", "--once"),
        etl4all(stack, "run-stage", "load", "--once"),
    )
    again = table(stack)
    assert again.drop("updated_at").equals(rows.drop("updated_at"))
    assert count(stack, "reject") == rejects


def test_two_extractors_racing_load_each_file_once(stack: dict[str, str], tmp_path: Path) -> None:
    finish(etl4all(stack, "init-db"))
    finish(*(etl4all(stack, "run-stage", "extract", "--once") for _ in range(2)))
    assert depths(stack)[queues.POINTS] == 4  # one batch per file, whoever took it
    finish(
        etl4all(stack, "run-stage", "transform", "--once"),
        etl4all(stack, "run-stage", "load", "--once"),
    )
    assert table(stack).height == expected(tmp_path / "ftp").height


def test_poison_message_is_dead_lettered_and_the_worker_goes_on(stack: dict[str, str]) -> None:
    settings = Settings.load(environ=stack)
    points = queues.name(settings.queue_prefix, queues.POINTS)
    with wiring.open_broker(settings) as bus:
        bus.publish(
            points,
            b"not parquet",
            {
                "batch_id": "poison-1",
                "source": "x",
                "rows": 3,
                "schema": "points",
                "sha256": "0" * 64,
            },
        )
    finish(etl4all(stack, "init-db"))
    pipeline(stack)
    with wiring.open_broker(settings) as bus:
        dead = queues.name(settings.queue_prefix, queues.DEAD)
        assert bus.depth(dead) == 1
        letter = next(iter(bus.consume(dead, timeout=5)))
        assert letter.headers["batch_id"] == "poison-1"
        assert "sha256" in letter.headers["x-etl4all-error"]
        letter.ack()
    assert table(stack).height > 0  # the good batches after it were loaded


def test_sigterm_finishes_and_exits_zero(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "init-db"))  # a loader checks its tables at start
    worker = etl4all(stack, "run-stage", "load")
    assert worker.stdout is not None
    lines = []
    for line in worker.stdout:  # until it says it is connected and consuming
        lines.append(line)
        if "worker consuming" in line:
            break
    worker.send_signal(signal.SIGTERM)
    rest, _ = worker.communicate(timeout=30)
    out = "".join(lines) + rest
    assert worker.returncode == 0, out
    assert "worker consuming" in out and "worker on" in out and "done" in out


def test_sigterm_in_the_middle_of_a_batch_lets_it_finish(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "init-db"))  # a paid transformer reads the answers kept there
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    before = depths(stack)
    with FakeApi(latency=0.05) as api:
        env = {
            **stack,
            "ETL4ALL_GEOCODER": "google",
            "ETL4ALL_GOOGLE_URL": api.google_url,
            "GOOGLE_MAPS_API_KEY": api.key or "",
            "ETL4ALL_CONCURRENCY": "4",
        }
        worker = etl4all(env, "run-stage", "transform")
        deadline = time.monotonic() + 60
        while api.calls < 10 and time.monotonic() < deadline:  # the first batch is under way
            time.sleep(0.02)
        worker.send_signal(signal.SIGTERM)
        at_signal = api.calls
        out, _ = worker.communicate(timeout=120)
        total = api.calls
    assert worker.returncode == 0, out
    assert "SIGTERM received; finishing the current batch" in out
    assert 10 <= at_signal < total  # the signal came mid-batch, and the batch went on
    after = depths(stack)
    assert after[queues.POINTS] == before[queues.POINTS] - 1  # that batch, and only it, acked
    assert after[queues.ADDRESSES] == before[queues.ADDRESSES] + 1  # its addresses published
    assert after[queues.DEAD] == 0


def test_wrong_api_key_stops_the_transformer_and_keeps_the_batch(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "init-db"))
    finish(etl4all(stack, "run-stage", "extract", "--once"))
    before = depths(stack)  # point batches, and the parse rejects on their way to load
    with FakeApi() as api:
        env = {
            **stack,
            "ETL4ALL_GEOCODER": "google",
            "ETL4ALL_GOOGLE_URL": api.google_url,
            "GOOGLE_MAPS_API_KEY": "AIzaWRONG-key-for-this-test-0000000000",
        }
        worker = etl4all(env, "run-stage", "transform")
        out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 2  # a configuration fault, found by the start-up check
    assert "REQUEST_DENIED" in out and "AIzaWRONG" not in out
    assert before[queues.POINTS] == 4
    assert depths(stack) == before  # the batch went back, nothing acked or published
