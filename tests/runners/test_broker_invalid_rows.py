"""A batch with one NaN latitude, through real RabbitMQ workers into MariaDB: that row becomes a
reject, the rest is loaded, nothing is dead-lettered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
import pymysql
import pytest

from etl4all import sample
from etl4all.broker import batch
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.runners.broker import run_consumer
from etl4all.settings import Settings
from etl4all.stages.transform import CallBudget
from etl4all.warehouse.read import read_warehouse

pytestmark = [pytest.mark.mysql, pytest.mark.rabbitmq]


@pytest.fixture
def settings(tmp_path: Path, mysql_url: str, amqp_url: str, unique: str) -> Iterator[Settings]:
    settings = Settings(
        broker_url=amqp_url,
        queue_prefix=f"etl4all-test-{unique}",
        warehouse_url=mysql_url,
        state_url=f"sqlite:///{tmp_path}/state.db",
        once=True,
        poll_interval=1.0,
    )
    with wiring.open_warehouse(settings) as wh:
        wh.init()
    yield settings
    with wiring.open_broker(settings) as bus:
        bus.delete()


def rejects(url: str) -> list[tuple[str, int, str, str]]:
    parts = urlsplit(url)
    with (
        pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path[1:],
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT source_file, source_line, reason, text FROM reject")
        return list(cur.fetchall())


def test_a_nan_latitude_rejects_its_row_and_the_workers_load_the_rest(
    settings: Settings, mysql_url: str
) -> None:
    points = parse.parse(sample.render(sample.records(files=1, points=50, seed=8)), "f.txt").points
    bad = points.with_columns(
        latitude=pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise("latitude")
    )
    body, headers = batch.encode(bad, kind="points", batch_id="f-00000", source="f.txt")
    with wiring.open_broker(settings) as bus:
        bus.publish(bus.topology.points, body, headers)

    stop = threading.Event()
    transformed = run_consumer("transform", settings, stop, CallBudget())
    loaded = run_consumer("load", settings, stop, CallBudget())

    assert (transformed.acked, transformed.dead_lettered) == (1, 0)
    assert loaded.dead_lettered == 0 and loaded.acked >= 2  # addresses and rejects
    good = points.filter(pl.int_range(pl.len()) != 7)
    rows = read_warehouse(mysql_url)
    assert rows.height == good.select("latitude", "longitude").unique().height
    assert rejects(mysql_url) == [
        ("f.txt", points["line"][7], "invalid_coordinate", f"NaN,{points['longitude'][7]}")
    ]
    with wiring.open_broker(settings) as bus:
        assert bus.depth(bus.topology.dead) == 0
