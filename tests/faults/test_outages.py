"""Fault scenarios: a backend goes away mid-run and comes back.

- RabbitMQ: every connection through a TCP proxy (:mod:`tcp_proxy`) is reset and new ones
  are refused for 4 s (several reconnection attempts); files keep arriving meanwhile, so the
  extractor meets the outage too;
- MariaDB: the loader's connections are cut the same way for 4 s, and for 15 s, longer than
  the longest wait between two of the loader's retries (``RETRY_CAP``, 10 s): the loader
  holds its batch, nothing is dead-lettered;
- Redis: the state is lost (every key of the pipeline's prefix deleted at once, as a FLUSHDB
  of a database of its own would) once 40 % of the rows are in: claims, done marks and the
  paid cache are gone, so files are redone and coordinates paid again, but no row is
  duplicated.

Each outage starts once a quarter of the rows are loaded, so it hits work in progress.
"""

from __future__ import annotations

import pytest
from harness import MARKS, Pipeline, figure
from tcp_proxy import TcpProxy

from etl4all.stages.worker import RETRY_CAP

pytestmark = MARKS

BROKER_OUTAGE = 4
"""Seconds the broker is down."""


def test_broker_connections_cut_for_a_while(pipeline: Pipeline) -> None:
    pipeline.put_files(files=6, points=250, seed=41)
    late = pipeline.stage_files(files=2, points=250, seed=42, prefix="late")
    broker = pipeline.urls["broker"]
    with TcpProxy.to_url(broker) as proxy:
        pipeline.env["ETL4ALL_BROKER_URL"] = proxy.url(broker)
        pipeline.start()
        pipeline.wait_loaded(0.25)
        proxy.cut()
        rows = pipeline.rows()
        for path in late:  # new uploads: the extractor must publish during the outage
            pipeline.publish(path)
        pipeline.hold(BROKER_OUTAGE, "the broker outage to end")
        proxy.restore()
        pipeline.drain()
    figures = pipeline.verify()
    pipeline.report(f"outage={BROKER_OUTAGE}s rows_at_cut={figure(rows)} {figures}")


@pytest.mark.parametrize("seconds", [4, int(RETRY_CAP) + 5])
def test_database_unreachable(pipeline: Pipeline, seconds: int) -> None:
    pipeline.put_files(files=8, points=250, seed=43)
    warehouse = pipeline.urls["warehouse"]
    with TcpProxy.to_url(warehouse) as proxy:
        pipeline.env["ETL4ALL_WAREHOUSE_URL"] = proxy.url(warehouse)
        pipeline.start()
        pipeline.wait_loaded(0.25)
        proxy.cut()
        rows = pipeline.rows()
        pipeline.hold(seconds, "the database outage to end")
        proxy.restore()
        pipeline.drain()
    figures = pipeline.verify()
    pipeline.report(f"outage={seconds}s rows_at_cut={figure(rows)} {figures}")


def test_redis_flushed_mid_run(pipeline: Pipeline) -> None:
    pipeline.put_files(files=8, points=250, seed=44)
    pipeline.start()
    pipeline.wait_loaded(0.4)
    rows, paid = pipeline.rows(), pipeline.api.calls
    assert pipeline.probe.forget_state() > 0
    pipeline.drain()
    # The flush forgets the paid cache and the done marks: every file is redone, and what the
    # warehouse holds is answered from it. Only what was paid but not loaded yet (in flight
    # at the flush) may be paid once more.
    in_flight = max(paid - rows, 0)
    figures = pipeline.verify(calls_per_key=1.05 + in_flight / pipeline.expected().keys)
    extracted = pipeline.extracted()
    pipeline.report(f"flushed_at={figure(rows)} rows extracted={extracted}/8 files {figures}")
