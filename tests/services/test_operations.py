"""What operators see of running workers: Prometheus metrics, JSON logs and `etl4all status`.

The three stages run as long-lived `run-stage` processes with `--metrics-port` against the
real RabbitMQ, Redis and MariaDB; the test scrapes their endpoints while they run, compares
the counters with what the warehouse holds, and asks `status` (table and JSON) meanwhile.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from private_server import free_port
from prometheus_client.parser import text_string_to_metric_families
from workers import count, etl4all, expected, finish

from etl4all import metrics
from etl4all.broker import batch
from etl4all.cli import cli
from etl4all.exits import ATTENTION as EXIT_DEAD_LETTERS
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.slow]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a worker's endpoint: (name, sorted labels) → value; empty until up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def probe(port: int, path: str) -> int:
    """The status a worker's probe answers."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
        return int(answer.status)


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(port: int, name: str, want: float, **labels: str) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        samples = scrape(port)
        if value(samples, name, **labels) >= want:
            return samples
        time.sleep(0.3)
    raise AssertionError(f"{name}{labels} never reached {want}: {scrape(port)}")


def stop(*processes: subprocess.Popen[str]) -> list[str]:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    return finish(*processes)


def status(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["status", *args], env=env)
    return result.exit_code, result.output


def test_metrics_logs_and_status_of_running_workers(stack: dict[str, str], tmp_path: Path) -> None:
    finish(etl4all(stack, "init-db"))
    folder = tmp_path / "ftp"
    parsed = [parse.parse(p.read_bytes(), p.name) for p in sorted(folder.glob("*.txt"))]
    points = sum(p.points.height for p in parsed)
    reasons = pl.concat([p.rejects for p in parsed]).get_column("reason").value_counts().rows()
    distinct = expected(folder).height
    ports = {stage: free_port() for stage in ("extract", "transform", "load")}
    workers = {
        stage: etl4all(
            stack, "run-stage", stage, "--metrics-port", str(port), "--log-format", "json"
        )
        for stage, port in ports.items()
    }
    try:
        extracted = wait_for(ports["extract"], "etl4all_files_total", 4, stage="extract")
        probes = [probe(port, path) for port in ports.values() for path in metrics.PROBES]
        loaded = wait_for(ports["load"], "etl4all_rows_total", distinct, kind="inserted")
        code, table = status(stack)
        code_json, output = status(stack, "--json")
        # a corrupt batch: the transformer dead-letters it and counts it
        body, headers = batch.encode(
            parsed[0].points.head(1), kind="points", batch_id="bad-00000", source="bad.txt"
        )
        with wiring.open_broker(Settings.load(environ=stack)) as bus:
            bus.publish(bus.topology.points, body[:-8] + b"garbage!", headers)
        transformed = wait_for(
            ports["transform"], "etl4all_dead_lettered_total", 1, stage="transform"
        )
        dead_code, _ = status(stack)
    finally:
        logs = dict(zip(workers, stop(*workers.values()), strict=True))

    assert probes == [200] * 6  # run-stage's probes follow its worker thread
    assert value(extracted, "etl4all_points_total", stage="extract") == points
    assert reasons and all(
        value(extracted, "etl4all_rejects_total", stage="extract", reason=reason) == n
        for reason, n in reasons
    )
    assert value(extracted, "etl4all_batches_total", stage="extract", outcome="acked") >= 4
    assert count(stack, "address") == distinct
    assert value(loaded, "etl4all_rows_total", kind="updated") == 0
    assert value(loaded, "etl4all_batches_total", stage="load", outcome="acked") > 0
    assert value(loaded, "etl4all_batch_duration_seconds_count", stage="load") == value(
        loaded, "etl4all_batches_total", stage="load", outcome="acked"
    )
    assert value(transformed, "etl4all_points_total", stage="transform") == points
    assert value(transformed, "etl4all_geocoder_calls_total", geocoder="offline") == 0
    assert value(transformed, "etl4all_errors_total", stage="transform", kind="DataError") == 1
    assert (
        value(transformed, "etl4all_batches_total", stage="transform", outcome="dead_lettered") == 1
    )

    # status while the workers ran: every queue has its consumer, the rows are there
    assert code == 0, table
    prefix = stack["ETL4ALL_QUEUE_PREFIX"]
    assert f"{prefix}.points" in table and "warehouse rows" in table and "last load" in table
    assert code_json == 0, output
    found = json.loads(output)
    by_name = {q["name"]: q for q in found["queues"]["queues"]}
    assert by_name[f"{prefix}.points"]["consumers"] == 1
    assert by_name[f"{prefix}.addresses"]["consumers"] == 1
    assert by_name[f"{prefix}.dead"]["ready"] == 0
    assert found["state"]["files_done"] == 4 and found["warehouse"]["rows"] == distinct
    assert found["warehouse"]["last_loaded"] is not None
    assert dead_code == EXIT_DEAD_LETTERS

    # JSON log lines: one object per line, with the batch's facts as fields
    records = [json.loads(line) for line in logs["load"].splitlines() if line.startswith("{")]
    assert records and all(r["stage"] == "load" for r in records)
    done = [r for r in records if r["message"].startswith("batch ") and "rows" in r]
    assert done and all({"time", "level", "batch", "seconds", "logger"} <= set(r) for r in done)
    parsed_lines = [json.loads(line) for line in logs["extract"].splitlines() if '"file"' in line]
    assert sorted(r["file"] for r in parsed_lines) == sorted(p.name for p in folder.glob("*.txt"))


def test_status_shows_an_unreachable_part_and_exits_1(stack: dict[str, str]) -> None:
    finish(etl4all(stack, "init-db"))
    env = {**stack, "ETL4ALL_STATE_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code, output = status(env, "--json")
    assert code == 1
    found = json.loads(output[: output.rindex("}") + 1])
    assert "error" in found["state"] and found["warehouse"]["rows"] == 0
    assert "Traceback" not in output
    code, output = status(env)
    assert code == 1 and "unreachable" in output and "Traceback" not in output
