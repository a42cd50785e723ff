"""Prometheus metrics of a worker (``run-stage --metrics-port PORT``), and its health probes.

:func:`serve` starts the endpoint: ``/metrics`` reads the process's record of counted events
(:data:`etl4all.counts.PROCESS`) at each scrape, so the metrics keep no count of their own;
``/readyz`` answers 200 while the worker thread is alive (served only after the start-up
check), ``/healthz`` too while it makes progress (:mod:`etl4all.liveness`). A process without
metrics imports no ``prometheus-client``. The metrics, their labels, probes and alerts:
docs/operations.md (Metrics).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from etl4all import liveness
from etl4all.counts import BUCKETS, PROCESS, Counts
from etl4all.errors import ConfigError, MissingDependencyError
from etl4all.liveness import Liveness

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

COUNTERS = (
    ("files", "Files read and parsed.", ("stage",)),
    ("points", "Points read (extract) or geocoded (transform).", ("stage",)),
    ("rejects", "Records or points rejected, by reason.", ("stage", "reason")),
    ("geocoder_calls", "Geocoding API calls made.", ("geocoder",)),
    ("geocoder_cache_hits", "Coordinates found in the cache.", ("geocoder",)),
    ("geocoder_retries", "Geocoding API calls retried.", ("geocoder",)),
    ("rows", "Warehouse rows inserted, updated or unchanged.", ("kind",)),
    ("batches", "Messages settled, by outcome.", ("stage", "outcome")),
    ("batch_retries", "In-process retries of a batch.", ("stage",)),
    ("errors", "Errors met while handling batches, by class.", ("stage", "kind")),
)
"""The counters: record name (``etl4all_<name>_total``), help text, labels."""
DURATION = "batch_duration_seconds"
"""The record name of the histogram of a batch's duration."""
LIVENESS, READINESS = "/healthz", "/readyz"
PROBES = (LIVENESS, READINESS)
"""The paths of the probes."""

_serving: list[int] = []
"""The port served once :func:`serve` ran (a list, so no ``global`` is needed)."""


def serve(port: int, host: str = "127.0.0.1", stall_seconds: float = 0.0) -> None:
    """Serve the metrics of :data:`~etl4all.counts.PROCESS` on ``http://host:port/metrics``
    and the probes on ``/healthz`` and ``/readyz`` (a daemon thread), once per process.

    Call it from the thread that runs the worker, once its backends were checked: the probes
    answer 200 while this thread is alive, ``/healthz`` only while it made progress
    (:data:`etl4all.liveness.PROCESS`) within ``stall_seconds`` (0: always).

    Raises:
        MissingDependencyError: prometheus-client is not installed.
        ConfigError: the port cannot be bound (in use, or privileged).
    """
    if _serving:
        return
    probes = Probes(threading.current_thread(), liveness.PROCESS, stall_seconds)
    start(port, host, PROCESS, probes)
    _serving.append(port)


def start(port: int, host: str, counts: Counts, probes: Probes) -> WSGIServer:
    """Serve the metrics of ``counts`` and ``probes`` on ``host:port`` (a daemon thread;
    port 0: any free one). Returns the server: ``server_port`` is its port, ``shutdown()``
    stops it.

    Raises:
        MissingDependencyError: prometheus-client is not installed.
        ConfigError: the port cannot be bound (in use, or privileged).
    """
    try:
        import prometheus_client as prom
    except ImportError as exc:
        raise MissingDependencyError("prometheus_client", "metrics") from exc
    registry = prom.CollectorRegistry()
    registry.register(Collector(counts))
    try:
        server, _ = prom.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {port} --metrics-host {host}: cannot listen there: {exc}"
        ) from exc
    server.set_app(_with_probes(prom.make_wsgi_app(registry), probes))
    return server


class Probes:
    """The answers of the probes: ``worker`` alive (readiness), and alive and progressing
    within ``stall_seconds`` by ``progress`` (liveness; 0: never stalled)."""

    def __init__(self, worker: threading.Thread, progress: Liveness, stall_seconds: float) -> None:
        self.worker = worker
        self.progress = progress
        self.stall_seconds = stall_seconds

    def failure(self, path: str) -> str | None:
        """Why the probe at ``path`` fails, or None when it passes."""
        if not self.worker.is_alive():
            return "the worker thread ended"
        silent = self.progress.silent_for()
        if path == LIVENESS and 0 < self.stall_seconds <= silent:
            return f"no progress for {silent:.0f} s (--stall-seconds {self.stall_seconds:g})"
        return None


_App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application."""


def _with_probes(metrics: _App, probes: Probes) -> _App:
    """``metrics`` (the prometheus-client application) with the probes answered first."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path not in PROBES:
            return metrics(environ, start_response)
        failure = probes.failure(path)
        status = "200 OK" if failure is None else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [f"{failure or 'ok'}\n".encode()]

    return app


class Collector:
    """The metrics of a record, read at each scrape (a prometheus-client custom collector)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        """The metric families, from the record as it is now."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        for name, text, labels in COUNTERS:
            family = CounterMetricFamily(f"etl4all_{name}", text, labels=labels)
            for key, n in sorted(self.counts.samples(name).items()):
                family.add_metric([dict(key)[label] for label in labels], n)
            yield family
        dead = CounterMetricFamily(
            "etl4all_dead_lettered", "Messages sent to the dead-letter queue.", labels=["stage"]
        )
        for stage, n in sorted(self.counts.by("stage", "batches", outcome="dead_lettered").items()):
            dead.add_metric([stage], n)
        yield dead
        duration = HistogramMetricFamily(
            f"etl4all_{DURATION}", "Seconds to handle one batch.", labels=["stage"]
        )
        for key, (counts, total) in sorted(self.counts.histogram(DURATION).items()):
            cumulative = list(itertools.accumulate(counts))
            buckets = list(zip([*map(str, BUCKETS), "+Inf"], cumulative, strict=True))
            duration.add_metric([dict(key)["stage"]], buckets, total)
        yield duration
