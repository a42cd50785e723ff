"""Every queue name in one place."""

from __future__ import annotations

POINTS = "points"
"""Point batches from extract to transform."""
ADDRESSES = "addresses"
"""Address batches from transform to load."""
DEAD = "dead"
"""Dead letters of both queues."""


def name(prefix: str, queue: str) -> str:
    """The full queue name, e.g. ``etl4all.points``."""
    return f"{prefix}.{queue}"
