"""The long-running extractor outlives outages of Redis, FTP and RabbitMQ; a config fault stops it.

Each outage is real: the backend is reached through a :class:`tcp_proxy.TcpProxy` that the test
cuts and restores. At the end every batch of every file done was published: a file is never
marked done before the broker confirmed all of its batches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sources.ftp_server import FtpTestServer
from tcp_proxy import TcpProxy

from etl4all import sample
from etl4all.broker import batch
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.runners.broker import run_extract
from etl4all.settings import Settings

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[FtpTestServer]:
    with FtpTestServer(tmp_path / "ftp") as server:
        yield server


@pytest.fixture
def settings(ftp: FtpTestServer, redis_url: str, amqp_url: str, unique: str) -> Iterator[Settings]:
    settings = Settings(
        source_url=ftp.url,
        state_url=redis_url,
        broker_url=amqp_url,
        queue_prefix=f"etl4all-test-{unique}",
        warehouse_url="mysql://root@127.0.0.1/outages",
        settle_seconds=0.2,
        poll_interval=0.3,
        batch_rows=50,
    )
    yield settings
    with wiring.open_broker(settings) as bus:
        bus.delete()


class Running:
    """``run_extract`` in a thread, stopped and joined by :meth:`finish`."""

    def __init__(self, settings: Settings) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
        self.thread.start()

    def _run(self, settings: Settings) -> None:
        try:
            run_extract(settings, self.stop)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """:func:`wait_until`, failing at once if the extractor stopped."""

        def met() -> bool:
            assert self.error is None, self.error
            assert self.thread.is_alive(), "the extractor stopped"
            return condition()

        wait_until(met, what, timeout)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive()
        assert self.error is None, self.error


def done(settings: Settings) -> int:
    """Files marked done, as the real (unproxied) Redis says."""
    with wiring.open_state(settings) as ledger:
        return ledger.done_count()


def batch_ids(folder: Path, rows: int) -> set[str]:
    """The ids of every points batch of the files in ``folder``."""
    ids = set()
    for path in folder.glob("*.txt"):
        data = path.read_bytes()
        points = parse.parse(data, path.name).points
        sha = hashlib.sha256(data).hexdigest()
        count = len(list(batch.chunks(points, max_rows=rows)))
        ids.update(batch.batch_id(sha, i) for i in range(count))
    return ids


def published(settings: Settings) -> set[str]:
    """The batch ids in the points queue (consumed)."""
    ids: set[str] = set()
    with wiring.open_broker(settings.replace(prefetch=500)) as bus:
        for delivery in bus.consume(bus.topology.points, timeout=1.0):
            ids.add(delivery.headers["batch_id"])
            delivery.ack()
    return ids


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll failed")]


@pytest.mark.parametrize("backend", ["redis", "ftp"])
def test_the_extractor_waits_out_an_outage_and_goes_on(
    backend: str,
    settings: Settings,
    ftp: FtpTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    target = settings.state_url if backend == "redis" else ftp.url
    with TcpProxy.to_url(target) as proxy:
        proxied = (
            settings.replace(state_url=proxy.url(target))
            if backend == "redis"
            else settings.replace(source_url=proxy.url(target))
        )
        sample.write_sample(ftp.root, files=1, points=120, seed=1)
        running = Running(proxied)
        running.wait_until(lambda: done(settings) == 1, "the first file is done")

        proxy.cut()
        sample.write_sample(ftp.root / "later", files=1, points=80, seed=2)
        running.wait_until(lambda: len(warnings(caplog)) >= 2, "two polls have failed")
        assert done(settings) == 1

        proxy.restore()
        running.wait_until(lambda: done(settings) == 2, "the second file is done")
        running.finish()
    assert published(settings) >= batch_ids(ftp.root, 50) | batch_ids(ftp.root / "later", 50)
    assert all("polling again in" in line for line in warnings(caplog))


def test_a_broker_that_gave_up_is_reopened_and_a_cut_file_is_redone(
    settings: Settings, ftp: FtpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = settings.broker_url or ""
    with TcpProxy.to_url(url) as proxy:
        # reconnect_attempts=0: the AMQP connection gives up at once; the extractor reopens it
        proxied = settings.replace(
            broker_url=proxy.url(url) + "?reconnect_attempts=0", batch_rows=10
        )
        sample.write_sample(ftp.root, files=1, points=3_000, seed=3)
        running = Running(proxied)
        with wiring.open_broker(settings) as watcher:
            running.wait_until(lambda: watcher.depth(watcher.topology.points) > 0, "batches flow")
            proxy.pause()  # frozen in the middle of the file's 300 batches
        assert done(settings) == 0
        proxy.cut()
        running.wait_until(lambda: len(warnings(caplog)) >= 2, "two polls have failed")
        assert done(settings) == 0  # some batches were not published: the file is not done

        proxy.resume()
        proxy.restore()
        running.wait_until(lambda: done(settings) == 1, "the file is done", timeout=120)
        running.finish()
    assert published(settings) >= batch_ids(ftp.root, 10)


def test_a_config_fault_in_the_poll_loop_stops_the_extractor_with_exit_2(
    settings: Settings, ftp: FtpTestServer
) -> None:
    env: dict[str, str] = {
        "ETL4ALL_SOURCE_URL": ftp.url,
        "ETL4ALL_STATE_URL": settings.state_url,
        "ETL4ALL_BROKER_URL": settings.broker_url or "",
        "ETL4ALL_QUEUE_PREFIX": settings.queue_prefix,
        "ETL4ALL_WAREHOUSE_URL": settings.warehouse_url,
        "ETL4ALL_SETTLE_SECONDS": "0.2",
        "ETL4ALL_POLL_INTERVAL": "0.3",
    }
    sample.write_sample(ftp.root, files=1, points=20, seed=4)
    worker = subprocess.Popen(
        [sys.executable, "-m", "etl4all", "run-stage", "extract"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: done(settings) == 1, "the first file is done")
        with wiring.open_broker(settings) as bus:
            bus.delete()  # its queues are gone: no retry can make a publish succeed
        sample.write_sample(ftp.root / "later", files=1, points=20, seed=5)
        out, _ = worker.communicate(timeout=120)
    finally:
        worker.kill()
    assert worker.returncode == 2, out
    assert "no queue is bound" in out
    assert done(settings) == 1
