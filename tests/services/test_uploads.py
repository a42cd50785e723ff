"""Services mode and uploads that stall: FTP → extract → RabbitMQ → transform → load → MariaDB.

An upload that pauses longer than the settle time in the middle of a number must never leave
a row that no finished file holds (issue 8, item 8).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sources.ftp_server import FtpTestServer
from workers import count, depths, etl4all, finish, pipeline, table

from etl4all.broker import queues
from etl4all.runners import wiring
from etl4all.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.slow]

RECORDS = [
    "Latitude: 30°01′12″S   -30.01986809\r\nLongitude: 51°11′12″W   -51.18678828\r\n"
    "Distance: 3.397 km  Bearing: 61.067°",
    "Latitude: 30°02′59″S   -30.04982864\r\nLongitude: 51°12′05″W   -51.20150245\r\n"
    "Distance: 2.2959 km  Bearing: 137.352°",
]
FINISHED = "\r\n".join(RECORDS).encode()
STALLED = FINISHED[: FINISHED.rindex(b"-51.201") + len(b"-51.201")]
WANT = {(-30.01986809, -51.18678828), (-30.04982864, -51.20150245)}


@pytest.fixture
def upload(
    tmp_path: Path, unique: str, mysql_url: str, redis_url: str, amqp_url: str
) -> Iterator[tuple[dict[str, str], Path]]:
    """The workers' environment, and the file being uploaded to the FTP folder."""
    folder = tmp_path / "ftp"
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
        }
        finish(etl4all(env, "init-db"))
        yield env, folder / "data_points_20180101.txt"
        with wiring.open_broker(Settings.load(environ=env)) as bus:
            bus.delete()


def coordinates(env: dict[str, str]) -> set[tuple[float, float]]:
    return set(table(env).select(pl.col("latitude", "longitude").round(8)).rows())


def test_a_stalled_upload_loads_no_coordinate_of_its_cut_off_record(
    upload: tuple[dict[str, str], Path],
) -> None:
    env, path = upload
    path.write_bytes(STALLED)  # settled, but the upload only paused
    pipeline(env)
    assert coordinates(env) == {(-30.01986809, -51.18678828)}
    path.write_bytes(FINISHED)
    pipeline(env)
    assert coordinates(env) == WANT
    assert count(env, "reject") == 0
    assert depths(env) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}


def test_a_row_of_a_tail_taken_as_final_is_pruned_once_the_file_grows(
    upload: tuple[dict[str, str], Path],
) -> None:
    env, path = upload
    path.write_bytes(STALLED)
    pipeline({**env, "ETL4ALL_FINAL_SECONDS": "0"})  # a stall longer than --final-seconds
    assert (-30.04982864, -51.201) in coordinates(env)
    path.write_bytes(FINISHED)  # the upload resumed after all
    pipeline(env)  # the extractor publishes a prune; the loader applies it
    assert coordinates(env) == WANT
    assert depths(env) == {queues.POINTS: 0, queues.ADDRESSES: 0, queues.DEAD: 0}
