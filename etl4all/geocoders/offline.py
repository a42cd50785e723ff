"""``offline``: nearest known place, computed locally with polars-reverse-geocode.

No network, no key, no cost: fills ``city``, ``state`` and ``country`` (full English name)
from the GeoNames cities shipped with polars-reverse-geocode, and leaves the street-level
columns null. Roughly millions of coordinates per second, so results are not cached.
"""

from __future__ import annotations

import datetime as dt
import functools

import polars as pl
import polars_reverse_geocode as prg
import pycountry

from etl4all import frames
from etl4all.closing import Closing
from etl4all.geocoders.base import RESULT_SCHEMA, Geocoded, ResultSink


@functools.cache
def country_names() -> dict[str, str]:
    """ISO 3166 alpha-2 code → common English name (``BR`` → ``Brazil``)."""
    return {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}


class OfflineGeocoder(Closing):
    """Reverse-geocodes to city, state and country without any network access."""

    name = "offline"
    paid = False

    def reverse(self, keys: pl.DataFrame, on_results: ResultSink | None = None) -> Geocoded:
        """City, state and country of each coordinate in ``keys`` (all at once)."""
        lat, lon = pl.col("latitude"), pl.col("longitude")
        code = prg.find_closest_country(lat, lon)
        found = keys.select(
            "latitude",
            "longitude",
            city=prg.find_closest_city(lat, lon),
            state=prg.find_closest_state(lat, lon),
            country=code.replace_strict(country_names(), default=code, return_dtype=pl.String),
            geocoder=pl.lit(self.name),
            geocode_status=pl.lit("OK"),
            geocoded_at=pl.lit(dt.datetime.now(dt.UTC)),
        )
        missing = [name for name in RESULT_SCHEMA if name not in found.columns]
        found = frames.cast_frame(
            found.with_columns(pl.lit(None).alias(name) for name in missing), RESULT_SCHEMA
        )
        if on_results is not None:
            on_results(found)
        return Geocoded(addresses=found)

    def close(self) -> None:
        """Nothing to release."""
