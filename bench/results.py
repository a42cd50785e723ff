"""Shared helpers of the benchmarks: figures, medians, machine info and the results file.

Every bench script ends with :func:`write`, which stores ``bench/results/<name>.json``::

    {"bench": name, "machine": {...}, "versions": {...},
     "figures": [{"stage", "name", "value", "unit", "baseline", "ratio", "budget"}, ...]}

``baseline`` is a reference measured in the same run (a naive implementation, raw
``LOAD DATA``, a warm in-process run...), ``ratio`` is ``value / baseline`` and ``budget``
the DESIGN.md target the figure is held to, in words. ``bench/render.py`` renders every
results file into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the results files go (``ETL4ALL_BENCH_RESULTS`` overrides it, for tests)."""

PACKAGES = ("etl4all", "polars", "pyarrow", "numpy", "duckdb", "pymysql", "aiohttp", "pika")
"""Distributions whose versions every results file records."""


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured figure, with the reference it is compared with."""

    stage: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    budget: str | None = None

    @property
    def ratio(self) -> float | None:
        """``value / baseline``, or None without a baseline."""
        if not self.baseline:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        """The JSON form, ratio included, numbers rounded to 4 significant digits."""
        return {
            "stage": self.stage,
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "baseline": None if self.baseline is None else _round(self.baseline),
            "ratio": None if self.ratio is None else _round(self.ratio),
            "budget": self.budget,
        }


def median_seconds(runs: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """The median wall time of ``runs`` calls of ``func``, and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, load, OS, Python."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return info


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` (and ``extra``, e.g. a server's version)."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found | (extra or {})


def write(name: str, figures: list[Figure], extra_versions: dict[str, str] | None = None) -> Path:
    """Store ``figures`` as ``<results>/<name>.json`` and print them; returns the path."""
    folder = Path(os.environ.get("ETL4ALL_BENCH_RESULTS", RESULTS))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    document = {
        "bench": name,
        "machine": machine(),
        "versions": versions(extra_versions),
        "figures": [figure.as_dict() for figure in figures],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    for figure in figures:
        ratio = "" if figure.ratio is None else f"  ratio {figure.ratio:.2f}"
        print(f"  {figure.stage:<10} {figure.name:<48} {figure.value:>14,.2f} {figure.unit}{ratio}")
    print(f"wrote {path}")
    return path


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None
