"""The services-mode stack of a test: FTP with sample files, unique queues, keys and DB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sources.ftp_server import FtpTestServer

from etl4all import sample
from etl4all.runners import wiring
from etl4all.settings import Settings


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
        with wiring.open_broker(settings) as bus:
            bus.delete()
