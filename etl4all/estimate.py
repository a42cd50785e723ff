"""What geocoding the given files would cost, without calling any API."""

from __future__ import annotations

import dataclasses

import polars as pl

from etl4all import parse
from etl4all.settings import Settings
from etl4all.sources.base import FileRef, Source
from etl4all.stages.transform import distinct_keys, uncached_keys
from etl4all.state.base import State


@dataclasses.dataclass
class Estimate:
    """Distinct coordinates of some files, how many are cached, and the price of the rest."""

    files: int
    points: int
    distinct: int
    cached: int
    calls: int
    """API calls the files need: one per distinct uncached coordinate (0 when offline)."""
    price_per_1000: float

    @property
    def cost(self) -> float:
        """Estimated cost in USD."""
        return self.calls * self.price_per_1000 / 1000


def estimate(
    files: list[tuple[Source, FileRef]], store: State, settings: Settings, *, paid: bool
) -> Estimate:
    """Parse ``files`` and count the API calls their coordinates need (``paid`` geocoder)."""
    points, keys = 0, []
    for source, ref in files:
        parsed = parse.parse(source.read(ref), ref.name)
        points += parsed.points.height
        keys.append(distinct_keys(parsed.points, settings.geocode_precision))
    distinct = pl.concat(keys).unique() if keys else pl.DataFrame()
    cached = uncached_keys(distinct, store, settings)[0].height if paid and keys else 0
    return Estimate(
        files=len(files),
        points=points,
        distinct=distinct.height,
        cached=cached,
        calls=distinct.height - cached if paid else 0,
        price_per_1000=settings.price_per_1000,
    )
