"""Dry-run driver (``etl4all estimate``): what geocoding some files would cost, calling no API.

It is the extract stage's reading and the transform stage's plan, without the rest: every
file is read and parsed once, its coordinates are deduplicated at ``geocode_precision`` across
all files, and the cache answers what it knows; the rest are the calls a run would make.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from contextlib import ExitStack

import polars as pl

from etl4all.parsing import reading
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.stages.transform import distinct_keys, uncached_keys


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


def estimate(urls: Iterable[str], settings: Settings) -> Estimate:
    """Count the API calls that geocoding every file of ``urls`` needs."""
    config = wiring.transform_config(settings)
    files, points, keys = 0, 0, []
    with ExitStack() as stack:
        store = stack.enter_context(wiring.open_state(settings))
        for url in urls:
            source = stack.enter_context(wiring.open_source(url, settings))
            for ref in source.list_files():
                files += 1
                with source.open(ref) as file:
                    chunks = reading.pieces(file, reading.piece_bytes(settings.batch_rows))
                    for _, parsed in reading.parse_pieces(chunks, ref.name):
                        points += parsed.points.height
                        keys.append(distinct_keys(parsed.points, config.precision).unique())
        distinct = pl.concat(keys).unique() if keys else pl.DataFrame()
        paid = wiring.geocoder_is_paid(settings)
        cached = uncached_keys(distinct, store, config)[0] if paid else distinct.clear()
    return Estimate(
        files=files,
        points=points,
        distinct=distinct.height,
        cached=cached.height,
        calls=distinct.height - cached.height if paid else 0,
        price_per_1000=settings.price_per_1000,
    )
