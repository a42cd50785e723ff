"""Prometheus metrics of a worker (``run-stage --metrics-port PORT``).

:func:`serve` defines the metrics and starts their ``/metrics`` endpoint; until then every
``count_*`` function does nothing, so the stages count unconditionally and a process without
metrics pays nothing (and needs no ``prometheus-client``). The stages count where they sum a
batch up, never per row. The metrics, their labels and alerts: docs/operations.md (Metrics).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from etl4all.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from etl4all.warehouse.base import LoadResult

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: the histogram buckets of a batch's duration (a batch takes ms offline, minutes
through a rate-limited API)."""


@dataclasses.dataclass(frozen=True)
class _Metrics:
    """The metric objects of this process."""

    files: Any
    points: Any
    rejects: Any
    calls: Any
    cache_hits: Any
    api_retries: Any
    rows: Any
    batches: Any
    dead_lettered: Any
    batch_retries: Any
    errors: Any
    duration: Any


_active: list[_Metrics] = []
"""The process's metrics once :func:`serve` ran (a list, so no ``global`` is needed)."""


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Define the metrics and serve them on ``http://host:port/metrics`` (a daemon thread).

    Raises:
        MissingDependencyError: prometheus-client is not installed.
        ConfigError: the port cannot be bound (in use, or privileged).
    """
    try:
        import prometheus_client as prom
    except ImportError as exc:
        raise MissingDependencyError("prometheus_client", "metrics") from exc
    if _active:
        return
    registry = prom.CollectorRegistry()

    def counter(name: str, text: str, *labels: str) -> Any:
        return prom.Counter(f"etl4all_{name}", text, labels, registry=registry)

    metrics = _Metrics(
        files=counter("files", "Files read and parsed.", "stage"),
        points=counter("points", "Points read (extract) or geocoded (transform).", "stage"),
        rejects=counter("rejects", "Records or points rejected, by reason.", "stage", "reason"),
        calls=counter("geocoder_calls", "Geocoding API calls made.", "geocoder"),
        cache_hits=counter("geocoder_cache_hits", "Coordinates found in the cache.", "geocoder"),
        api_retries=counter("geocoder_retries", "Geocoding API calls retried.", "geocoder"),
        rows=counter("rows", "Warehouse rows inserted, updated or unchanged.", "kind"),
        batches=counter("batches", "Messages settled, by outcome.", "stage", "outcome"),
        dead_lettered=counter("dead_lettered", "Messages sent to the dead-letter queue.", "stage"),
        batch_retries=counter("batch_retries", "In-process retries of a batch.", "stage"),
        errors=counter("errors", "Errors met while handling batches, by class.", "stage", "kind"),
        duration=prom.Histogram(
            "etl4all_batch_duration_seconds",
            "Seconds to handle one batch.",
            ["stage"],
            buckets=BUCKETS,
            registry=registry,
        ),
    )
    try:
        prom.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {port} --metrics-host {host}: cannot listen there: {exc}"
        ) from exc
    _active.append(metrics)


def _metrics() -> _Metrics | None:
    return _active[0] if _active else None


def count_file(stage: str, points: int, rejects: Mapping[str, int]) -> None:
    """A file was read: its points and its rejects by reason."""
    if (m := _metrics()) is None:
        return
    m.files.labels(stage).inc()
    m.points.labels(stage).inc(points)
    count_rejects(stage, rejects)


def count_rejects(stage: str, rejects: Mapping[str, int]) -> None:
    """Rejects by reason."""
    if (m := _metrics()) is None:
        return
    for reason, n in rejects.items():
        m.rejects.labels(stage, reason).inc(n)


def count_geocoded(
    geocoder: str, *, points: int, calls: int, cache_hits: int, retries: int
) -> None:
    """A batch was geocoded."""
    if (m := _metrics()) is None:
        return
    m.points.labels("transform").inc(points)
    m.calls.labels(geocoder).inc(calls)
    m.cache_hits.labels(geocoder).inc(cache_hits)
    m.api_retries.labels(geocoder).inc(retries)


def count_loaded(result: LoadResult) -> None:
    """A batch was committed to the warehouse."""
    if (m := _metrics()) is None:
        return
    for kind in ("inserted", "updated", "unchanged"):
        m.rows.labels(kind).inc(getattr(result, kind))


def count_batch(stage: str, outcome: str, seconds: float | None = None) -> None:
    """A message was settled (``acked``, ``dead_lettered``, ``given_back``); ``seconds`` it
    took when it was handled."""
    if (m := _metrics()) is None:
        return
    m.batches.labels(stage, outcome).inc()
    if outcome == "dead_lettered":
        m.dead_lettered.labels(stage).inc()
    if seconds is not None:
        m.duration.labels(stage).observe(seconds)


def count_error(stage: str, error: BaseException, *, retried: bool = False) -> None:
    """A batch met ``error`` (and is retried in process when ``retried``)."""
    if (m := _metrics()) is None:
        return
    m.errors.labels(stage, type(error).__name__).inc()
    if retried:
        m.batch_retries.labels(stage).inc()
