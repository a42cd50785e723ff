"""The one record of counted events: each event is added once, where it happens.

A :class:`Counts` maps a name and its labels to a number (``points{stage=extract}``). The
stages add to the record they are given; a record adds to its parent too, so a file's counts
reach its extractor's, a run's and the process's (:data:`PROCESS`) in the same call. The run
summaries, the INFO lines and the Prometheus metrics (:mod:`etl4all.metrics`, which exposes
:data:`PROCESS`) all read a record; none keeps a count of its own.

Names are those of the metrics (``etl4all_<name>_total``) where a metric exists; the other
names (``files_skipped``, ``geocoded``, …) are read by the summaries only.
"""

from __future__ import annotations

import bisect
import collections
import threading

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: the histogram buckets of a batch's duration (a batch takes ms offline, minutes
through a rate-limited API)."""

Labels = tuple[tuple[str, str], ...]
"""A sample's labels, sorted by name."""


class Counts:
    """Counted events, by name and labels; thread-safe. See the module docstring."""

    def __init__(self, parent: Counts | None = None) -> None:
        self.parent = parent
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._buckets: dict[str, dict[Labels, list[int]]] = {}
        self._sums: dict[str, dict[Labels, float]] = {}

    def child(self) -> Counts:
        """A new record that adds to this one as well."""
        return Counts(self)

    def add(self, name: str, n: float = 1, **labels: str) -> None:
        """Count ``n`` more ``name`` events with ``labels``, here and in every parent."""
        key = _key(labels)
        record: Counts | None = self
        while record is not None:
            with record._lock:
                values = record._values.setdefault(name, {})
                values[key] = values.get(key, 0) + n
            record = record.parent

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Note one duration of ``name`` (a histogram over :data:`BUCKETS`), here and in
        every parent."""
        key, slot = _key(labels), bisect.bisect_left(BUCKETS, seconds)
        record: Counts | None = self
        while record is not None:
            with record._lock:
                counts = record._buckets.setdefault(name, {})
                counts.setdefault(key, [0] * (len(BUCKETS) + 1))[slot] += 1
                sums = record._sums.setdefault(name, {})
                sums[key] = sums.get(key, 0.0) + seconds
            record = record.parent

    def get(self, name: str, **labels: str) -> int:
        """The ``name`` events whose labels include ``labels`` (all of them without)."""
        return int(self.total(name, **labels))

    def total(self, name: str, **labels: str) -> float:
        """Like :meth:`get`, for a count that is not whole (seconds)."""
        return float(sum(self.samples(name, **labels).values()))

    def by(self, label: str, name: str, **labels: str) -> collections.Counter[str]:
        """The ``name`` events whose labels include ``labels``, by the value of ``label``."""
        found: collections.Counter[str] = collections.Counter()
        for key, n in self.samples(name, **labels).items():
            found[dict(key).get(label, "")] += int(n)
        return found

    def samples(self, name: str, **labels: str) -> dict[Labels, float]:
        """The samples of ``name`` whose labels include ``labels``: labels → number."""
        wanted = set(labels.items())
        with self._lock:
            values = dict(self._values.get(name, {}))
        return {key: n for key, n in values.items() if wanted <= set(key)}

    def histogram(self, name: str) -> dict[Labels, tuple[list[int], float]]:
        """The durations of ``name``: labels → (counts per bucket, the last one above
        :data:`BUCKETS`; their sum)."""
        with self._lock:
            return {
                key: (list(counts), self._sums[name][key])
                for key, counts in self._buckets.get(name, {}).items()
            }


def _key(labels: dict[str, str]) -> Labels:
    return tuple(sorted((name, str(value)) for name, value in labels.items()))


PROCESS = Counts()
"""Every event of this process: what the metrics endpoint shows."""
