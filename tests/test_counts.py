"""Count once (issue 19, finding 7): the run summary, the Prometheus metrics and the INFO lines
read one record of counted events (:mod:`etl4all.counts`), so they agree."""

from __future__ import annotations

import collections
import logging
import re
import threading
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from etl4all import sample
from etl4all.broker import batch
from etl4all.broker.memory import MemoryBroker
from etl4all.counts import BUCKETS, PROCESS, Counts
from etl4all.errors import DataError
from etl4all.metrics import Collector
from etl4all.runners.embedded import RunSummary, run
from etl4all.settings import Settings
from etl4all.stages.worker import run_worker

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def exposed(counts: Counts) -> Samples:
    """What a metrics endpoint over ``counts`` shows: (name, sorted labels) → value."""
    registry = CollectorRegistry()
    registry.register(Collector(counts))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def counters(samples: Samples) -> Samples:
    """The counters' samples that are not zero."""
    return {key: n for key, n in samples.items() if key[0].endswith("_total") and n}


def grew(before: Samples, after: Samples) -> Samples:
    """What ``after`` counts more than ``before``."""
    return counters({key: n - before.get(key, 0.0) for key, n in after.items()})


def test_a_record_adds_to_its_parents_and_reads_by_label() -> None:
    run = Counts()
    file = run.child()
    file.add("rejects", 2, stage="extract", reason="bad_latitude")
    file.add("rejects", 1, stage="transform", reason="not_geocoded")
    file.observe("batch_duration_seconds", 0.07, stage="load")
    for record in (file, run):
        assert record.get("rejects") == 3 and record.get("rejects", stage="extract") == 2
        assert record.by("reason", "rejects") == {"bad_latitude": 2, "not_geocoded": 1}
        ((labels, (buckets, total)),) = record.histogram("batch_duration_seconds").items()
        assert labels == (("stage", "load"),) and total == 0.07
        assert buckets[BUCKETS.index(0.1)] == 1 and sum(buckets) == 1
    assert run.parent is None and run.get("points") == 0


def test_one_run_s_summary_metrics_and_log_lines_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    sample.write_sample(tmp_path / "in", files=3, points=80, seed=2, dirty_rate=0.05)
    settings = Settings(
        warehouse_url=f"duckdb:///{tmp_path}/w.duckdb",
        state_url=f"sqlite:///{tmp_path}/s.db",
        batch_rows=30,
    )
    process_before = exposed(PROCESS)
    summary = RunSummary()
    with caplog.at_level(logging.INFO, logger="etl4all"):
        run(["in"], settings, summary=summary)
    metrics = exposed(summary.counts)
    geo, load = summary.geocode, summary.load
    assert summary.processed == 3 and summary.unreadable > 0 and load.inserted > 0

    # every counter the run's record shows is one the summary says, with the same value
    by_stage: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for (name, labels), n in counters(metrics).items():
        if name == "etl4all_rejects_total":
            by_stage[dict(labels)["stage"]][dict(labels)["reason"]] += int(n)
    assert sum(by_stage.values(), collections.Counter()) == summary.rejects
    assert sum(by_stage["extract"].values()) == summary.unreadable
    rejects = {
        ("etl4all_rejects_total", (("reason", reason), ("stage", stage))): float(n)
        for stage, reasons in by_stage.items()
        for reason, n in reasons.items()
    }
    said = {
        ("etl4all_files_total", (("stage", "extract"),)): summary.processed,
        ("etl4all_points_total", (("stage", "extract"),)): summary.points,
        ("etl4all_points_total", (("stage", "transform"),)): geo.points,
        ("etl4all_geocoder_cache_hits_total", (("geocoder", "offline"),)): geo.cache_hits,
        ("etl4all_geocoder_calls_total", (("geocoder", "offline"),)): geo.calls,
        ("etl4all_rows_total", (("kind", "inserted"),)): load.inserted,
        ("etl4all_rows_total", (("kind", "updated"),)): load.updated,
        ("etl4all_rows_total", (("kind", "unchanged"),)): load.unchanged,
    }
    assert counters(metrics) == counters({**said, **rejects})
    # the process's endpoint counted the same events, once
    assert grew(process_before, exposed(PROCESS)) == counters(metrics)

    # the INFO lines of the files parsed and the batches loaded add up to the same counts
    lines = [record.getMessage() for record in caplog.records]
    parsed = [re.search(r"parsed file=\S+ points=(\d+) rejects=(\d+)", line) for line in lines]
    assert sum(int(m[1]) for m in parsed if m) == summary.points
    assert sum(int(m[2]) for m in parsed if m) == summary.unreadable
    loaded = [re.search(r"loaded rows=\d+ inserted=(\d+) updated=(\d+)", line) for line in lines]
    assert sum(int(m[1]) for m in loaded if m) == load.inserted
    assert sum(int(m[2]) for m in loaded if m) == load.updated
    # and so does the warehouse
    with duckdb.connect(f"{tmp_path}/w.duckdb") as db:
        (rows,) = db.execute("SELECT count(*) FROM address").fetchone() or (0,)
        (kept,) = db.execute("SELECT count(*) FROM reject").fetchone() or (0,)
    assert rows == load.inserted and kept == sum(summary.rejects.values())


def test_a_worker_s_stats_metrics_and_log_line_agree(caplog: pytest.LogCaptureFixture) -> None:
    frame = pl.DataFrame(
        {"source": "f.txt", "line": [1, 2], "latitude": -30.0, "longitude": -51.0},
        schema_overrides={"line": pl.Int64},
    ).with_columns(distance_km=None, bearing_deg=None)
    record = Counts()

    def handle(points: pl.DataFrame, headers: dict[str, Any]) -> None:
        if headers["batch_id"] == "f-1":
            raise DataError("a bad batch")

    with MemoryBroker(prefix="t", max_deliveries=3) as broker:
        for index in range(3):
            body, headers = batch.encode(frame, kind="points", batch_id=f"f-{index}", source="f")
            broker.publish("t.points", body, headers)
        with caplog.at_level(logging.INFO, logger="etl4all.stages.worker"):
            stats = run_worker(
                broker,
                "t.points",
                handle,
                stop=threading.Event(),
                idle_timeout=0.2,
                poll=0.05,
                stage="transform",
                counts=record,
            )
    metrics = exposed(record)
    stage = (("stage", "transform"),)
    assert (stats.acked, stats.rows, stats.dead_lettered) == (2, 4, 1)
    assert counters(metrics) == {
        ("etl4all_batches_total", (("outcome", "acked"), *stage)): stats.acked,
        ("etl4all_batches_total", (("outcome", "dead_lettered"), *stage)): stats.dead_lettered,
        ("etl4all_dead_lettered_total", stage): stats.dead_lettered,
        ("etl4all_errors_total", (("kind", "DataError"), *stage)): stats.dead_lettered,
    }
    assert metrics[("etl4all_batch_duration_seconds_count", stage)] == stats.acked
    (done,) = [r.getMessage() for r in caplog.records if "done: acked" in r.getMessage()]
    assert f"acked={stats.acked} rows={stats.rows} dead_lettered={stats.dead_lettered}" in done
