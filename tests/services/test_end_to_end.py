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
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
import pytest
from geocoders.fake_api import FakeApi
from sources.ftp_server import FtpTestServer

from etl4all import parse, sample
from etl4all.broker import queues
from etl4all.broker.amqp import AmqpBroker
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


@pytest.fixture
def stack(
    tmp_path: Path, unique: str, mysql_url: str, redis_url: str, amqp_url: str
) -> Iterator[dict[str, str]]:
    """Environment of the workers: FTP with sample files, unique queues, Redis keys and DB."""
    folder = tmp_path / "ftp"
    sample.write_sample(folder, files=4, points=300, seed=11, dirty_rate=0.05, duplicate_rate=0.2)
    with FtpTestServer(folder) as ftp:
        env = {
            "ETL4ALL_SOURCE_URL": ftp.url,
            "ETL4ALL_BROKER_URL": amqp_url,
            "ETL4ALL_QUEUE_PREFIX": f"etl4all-test-{unique}",
            "ETL4ALL_STATE_URL": redis_url,
            "ETL4ALL_WAREHOUSE_URL": mysql_url,
            "ETL4ALL_LOOKUP_URL": "mongomock://localhost/etl4all",
            "ETL4ALL_SETTLE_SECONDS": "0.2",
            "ETL4ALL_POLL_INTERVAL": "1",
            "ETL4ALL_BATCH_ROWS": "500",
        }
        yield env
        settings = Settings.load(environ=env)
        with AmqpBroker(url=amqp_url, settings=settings) as bus:
            bus.delete()


def etl4all(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``etl4all ARGS`` as a separate process with ``env`` added."""
    return subprocess.Popen(
        [sys.executable, "-m", "etl4all", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(*processes: subprocess.Popen[str]) -> list[str]:
    """Wait for ``processes``; each must exit 0. Their output."""
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=180)
        assert process.returncode == 0, out
        outputs.append(out)
    return outputs


def pipeline(env: dict[str, str], extractors: int = 1) -> None:
    """Run the extractors, then a transformer and a loader, each until its queue is idle."""
    finish(*(etl4all(env, "run-stage", "extract", "--once") for _ in range(extractors)))
    finish(
        etl4all(env, "run-stage", "transform", "--once"),
        etl4all(env, "run-stage", "load", "--once"),
    )


def expected(folder: Path) -> pl.DataFrame:
    """Distinct valid coordinates of the files, at 8 decimals."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    return points.select(pl.col("latitude", "longitude").round(8)).unique()


def rejected(folder: Path) -> int:
    """Rejects the parser finds in the files."""
    return sum(parse.parse(p.read_bytes(), p.name).rejects.height for p in folder.glob("*.txt"))


def count(env: dict[str, str], table_name: str) -> int:
    """Rows of a warehouse table."""
    import pymysql

    parts = urlsplit(env["ETL4ALL_WAREHOUSE_URL"])
    with (
        pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.strip("/"),
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"SELECT count(*) FROM `{table_name}`")
        return int(cur.fetchone()[0])


def depths(env: dict[str, str]) -> dict[str, int]:
    settings = Settings.load(environ=env)
    with AmqpBroker(url=env["ETL4ALL_BROKER_URL"], settings=settings) as bus:
        return {
            name: bus.depth(queues.name(settings.queue_prefix, name))
            for name in (queues.POINTS, queues.ADDRESSES, queues.DEAD)
        }


def table(env: dict[str, str]) -> pl.DataFrame:
    return read_warehouse(env["ETL4ALL_WAREHOUSE_URL"]).sort("latitude", "longitude")


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
    with AmqpBroker(url=stack["ETL4ALL_BROKER_URL"], settings=settings) as bus:
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
    with AmqpBroker(url=stack["ETL4ALL_BROKER_URL"], settings=settings) as bus:
        dead = queues.name(settings.queue_prefix, queues.DEAD)
        assert bus.depth(dead) == 1
        letter = next(iter(bus.consume(dead, timeout=5)))
        assert letter.headers["batch_id"] == "poison-1"
        assert "sha256" in letter.headers["x-etl4all-error"]
        letter.ack()
    assert table(stack).height > 0  # the good batches after it were loaded


def test_sigterm_finishes_and_exits_zero(stack: dict[str, str]) -> None:
    worker = etl4all(stack, "run-stage", "load")
    time.sleep(3)  # connected and consuming
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, out
    assert "worker on" in out and "done" in out


def test_wrong_api_key_stops_the_transformer_and_keeps_the_batch(stack: dict[str, str]) -> None:
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
    assert worker.returncode == 1
    assert "REQUEST_DENIED" in out and "AIzaWRONG" not in out
    assert before[queues.POINTS] == 4
    assert depths(stack) == before  # the batch went back, nothing acked or published
