"""The metrics endpoint answers an orchestrator's probes: ``/healthz`` and ``/readyz`` are 200
while the worker thread lives and 503 once it ended, ``/healthz`` also once the worker made no
progress for ``--stall-seconds`` (in virtual time); every other path still shows the metrics."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from virtual_clock import VirtualClock

from etl4all import metrics
from etl4all.counts import Counts
from etl4all.errors import ConfigError
from etl4all.liveness import Liveness


@pytest.fixture
def worker() -> Iterator[tuple[threading.Thread, threading.Event]]:
    """A thread standing for the worker, and the event that ends it."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait, name="worker")
    thread.start()
    yield thread, done
    done.set()
    thread.join()


def get(port: int, path: str) -> tuple[int, str]:
    """The status and body of ``GET path`` on the endpoint (an error status included)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_probes_follow_the_worker_thread_and_metrics_stay_served(
    worker: tuple[threading.Thread, threading.Event],
) -> None:
    thread, done = worker
    counts = Counts()
    counts.add("files", 2, stage="extract")
    server = metrics.start(0, "127.0.0.1", counts, metrics.Probes(thread, Liveness(), 0))
    try:
        port = server.server_port
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz") == (200, "ok\n")
        done.set()
        thread.join()
        for path in metrics.PROBES:
            assert get(port, path) == (503, "the worker thread ended\n")
        status, text = get(port, "/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    assert 'etl4all_files_total{stage="extract"} 2.0' in text


def test_a_port_in_use_is_a_configuration_error(
    worker: tuple[threading.Thread, threading.Event],
) -> None:
    probes = metrics.Probes(worker[0], Liveness(), 0)
    server = metrics.start(0, "127.0.0.1", Counts(), probes)
    try:
        with pytest.raises(ConfigError, match=f"--metrics-port {server.server_port} "):
            metrics.start(server.server_port, "127.0.0.1", Counts(), probes)
    finally:
        server.shutdown()
        server.server_close()


def test_liveness_fails_after_the_stall_time_without_progress_and_readiness_holds(
    worker: tuple[threading.Thread, threading.Event],
) -> None:
    clock = VirtualClock()
    progress = Liveness(clock)
    server = metrics.start(0, "127.0.0.1", Counts(), metrics.Probes(worker[0], progress, 900))
    try:
        port = server.server_port
        clock.sleep(899)
        assert get(port, "/healthz") == (200, "ok\n")
        clock.sleep(2)  # 901 s without a step of progress
        assert get(port, "/healthz") == (503, "no progress for 901 s (--stall-seconds 900)\n")
        assert get(port, "/readyz") == (200, "ok\n")  # alive: no traffic to take away
        progress.progressed()
        assert get(port, "/healthz") == (200, "ok\n")
    finally:
        server.shutdown()
        server.server_close()


def test_no_stall_limit_never_fails_a_live_worker(
    worker: tuple[threading.Thread, threading.Event],
) -> None:
    clock = VirtualClock()
    probes = metrics.Probes(worker[0], Liveness(clock), 0)
    clock.sleep(10**6)
    assert probes.failure(metrics.LIVENESS) is None
