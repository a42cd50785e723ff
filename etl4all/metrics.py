"""Prometheus metrics of a worker (``run-stage --metrics-port PORT``), and its health probes.

:func:`serve` starts the endpoint: ``/metrics`` reads the process's record of counted events
(:data:`etl4all.counts.PROCESS`) at each scrape, so the metrics keep no count of their own;
``/healthz`` and ``/readyz`` answer 200 while the worker thread is alive (served only after the
start-up check). A process without metrics imports no ``prometheus-client``. The metrics,
their labels, probes and alerts: docs/operations.md (Metrics).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from etl4all.counts import BUCKETS, PROCESS, Counts
from etl4all.errors import ConfigError, MissingDependencyError

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
PROBES = ("/healthz", "/readyz")
"""The paths of the liveness and readiness probes."""

_serving: list[int] = []
"""The port served once :func:`serve` ran (a list, so no ``global`` is needed)."""


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve the metrics of :data:`~etl4all.counts.PROCESS` on ``http://host:port/metrics``
    and the probes on ``/healthz`` and ``/readyz`` (a daemon thread), once per process.

    Call it from the thread that runs the worker, once its backends were checked: the probes
    answer 200 while this thread is alive.

    Raises:
        MissingDependencyError: prometheus-client is not installed.
        ConfigError: the port cannot be bound (in use, or privileged).
    """
    if _serving:
        return
    start(port, host, PROCESS, threading.current_thread())
    _serving.append(port)


def start(port: int, host: str, counts: Counts, worker: threading.Thread) -> WSGIServer:
    """Serve the metrics of ``counts`` and the probes of ``worker`` on ``host:port`` (a daemon
    thread; port 0: any free one). Returns the server: ``server_port`` is its port,
    ``shutdown()`` stops it.

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
    server.set_app(_with_probes(prom.make_wsgi_app(registry), worker))
    return server


_App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application."""


def _with_probes(metrics: _App, worker: threading.Thread) -> _App:
    """``metrics`` (the prometheus-client application) with :data:`PROBES` answered first."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in PROBES:
            return metrics(environ, start_response)
        alive = worker.is_alive()
        body = b"ok\n" if alive else b"the worker thread ended\n"
        status = "200 OK" if alive else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [body]

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
