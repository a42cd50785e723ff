"""What the report shows, gathered with the analysis queries (aggregated in the database).

Nothing here reads the whole table: counts, top lists and a density grid are computed by
``sql/analysis/`` queries, and the map takes every Nth point (at most ``sample_points``),
so a million rows cost a few queries, not a million Python objects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl

from etl4all.report.queries import AnalysisDatabase, Request

CACHING_TERMS_DAYS = {"google": 30}
"""Days a provider's terms let its results be cached: Google Maps Platform Service Specific
Terms, Geocoding: latitude/longitude for at most 30 consecutive calendar days."""

FAILED_REASONS = ("geocode_failed", "invalid_request", "unexpected_status", "not_geocoded")
"""Reject reasons of points no geocoder answered (as ``etl4all regeocode --status failed``)."""


@dataclasses.dataclass(frozen=True)
class Density:
    """Points per cell of a latitude/longitude grid: ``counts[row, column]``, row 0 south."""

    south: float
    west: float
    cell_lat: float
    cell_lon: float
    counts: np.ndarray

    @property
    def north(self) -> float:
        """The grid's north edge."""
        return self.south + self.cell_lat * self.counts.shape[0]

    @property
    def east(self) -> float:
        """The grid's east edge."""
        return self.west + self.cell_lon * self.counts.shape[1]


@dataclasses.dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as small frames."""

    url: str
    """The warehouse, redacted."""
    generated_at: dt.datetime
    headline: dict[str, Any]
    """One row of ``headline.sql``."""
    coverage: pl.DataFrame
    """``coverage.sql`` plus ``age_days``, ``terms_days`` and ``past_terms`` (rows)."""
    rejects: pl.DataFrame
    neighborhoods: pl.DataFrame
    streets: pl.DataFrame
    cities: pl.DataFrame
    files: pl.DataFrame
    duplicates: int
    sample: pl.DataFrame
    """Every Nth point: latitude, longitude, neighborhood, city."""
    density: Density | None

    @property
    def rows(self) -> int:
        """Rows in the address table."""
        return int(self.headline["address_rows"])

    @property
    def failed(self) -> int:
        """Points no geocoder answered (rejects with a :data:`FAILED_REASONS` reason)."""
        failed = self.rejects.filter(pl.col("reason").is_in(FAILED_REASONS))
        return int(failed.get_column("rejects").sum())


def gather(
    db: AnalysisDatabase,
    *,
    top: int = 15,
    sample_points: int = 20_000,
    grid: int = 120,
    now: dt.datetime | None = None,
) -> ReportData:
    """Run the analysis queries on ``db`` and shape their answers for the report.

    Args:
        top: rows of the top-neighborhood and top-street lists.
        sample_points: at most this many points on the map.
        grid: cells along the longer side of the density grid.
        now: the time geocode ages are measured at (default: now, UTC).
    """
    now = now or dt.datetime.now(dt.UTC)
    headline = db.run("headline").row(0, named=True)
    rows = int(headline["address_rows"])
    requests: dict[str, Request] = {
        "coverage": ("coverage", ()),
        "rejects": ("rejects_per_reason", ()),
        "neighborhoods": ("top_neighborhoods", (top,)),
        "streets": ("top_streets", (top,)),
        "cities": ("streets_per_city", ()),
        "files": ("points_per_file", ()),
        "duplicates": ("duplicates", ()),
        "sample": ("map_sample", (max(1, math.ceil(rows / sample_points)),)),
        **{
            f"stale {days}": ("stale_geocodes", (_cutoff(now, days),))
            for days in _providers_by_terms()
        },
    }
    grid_cells = _grid(headline, grid) if rows else None
    if grid_cells:
        requests["density"] = ("density", grid_cells[:4])
    got = db.run_all(requests)
    return ReportData(
        url=db.url,
        generated_at=now,
        headline=headline,
        coverage=_coverage(got, now),
        rejects=got["rejects"],
        neighborhoods=got["neighborhoods"],
        streets=got["streets"],
        cities=got["cities"],
        files=got["files"],
        duplicates=got["duplicates"].height,
        sample=got["sample"],
        density=_density(got["density"], grid_cells) if grid_cells else None,
    )


def _coverage(got: dict[str, pl.DataFrame], now: dt.datetime) -> pl.DataFrame:
    """Coverage per geocoder, with the oldest geocode's age and the rows past the terms."""
    coverage = got["coverage"].with_columns(
        age_days=(pl.lit(now) - pl.col("oldest_geocode")).dt.total_hours() / 24,
        terms_days=pl.col("geocoder").replace_strict(CACHING_TERMS_DAYS, default=None),
    )
    past = [
        got[f"stale {days}"].filter(pl.col("geocoder").is_in(providers))
        for days, providers in _providers_by_terms().items()
    ]
    stale = pl.concat(past).select("geocoder", past_terms="address_rows") if past else None
    if stale is None or stale.is_empty():
        return coverage.with_columns(past_terms=pl.lit(0, pl.Int64))
    return coverage.join(stale, on="geocoder", how="left").with_columns(
        pl.col("past_terms").fill_null(0)
    )


def _cutoff(now: dt.datetime, days: int) -> str:
    """``days`` before ``now`` as ``stale_geocodes.sql`` takes it: UTC time as text."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.%f")


def _providers_by_terms() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for provider, days in CACHING_TERMS_DAYS.items():
        found.setdefault(days, []).append(provider)
    return found


Grid = tuple[float, float, float, float, int, int]
"""South edge, cell height, west edge, cell width (degrees), rows, columns."""


def _grid(headline: dict[str, Any], grid: int) -> Grid:
    """A grid over the points' extent, ``grid`` cells along its longer side, cells about
    square on the map."""
    south, north = float(headline["min_latitude"]), float(headline["max_latitude"])
    west, east = float(headline["min_longitude"]), float(headline["max_longitude"])
    widen = math.cos(math.radians((south + north) / 2)) or 1.0
    span = max(north - south, (east - west) * widen, 1e-3)
    cell_lat = span / grid
    cell_lon = cell_lat / widen
    rows, columns = int((north - south) / cell_lat) + 1, int((east - west) / cell_lon) + 1
    return south, cell_lat, west, cell_lon, rows, columns


def _density(cells: pl.DataFrame, grid: Grid) -> Density:
    """The counts of ``density.sql`` on ``grid`` as a dense array."""
    south, cell_lat, west, cell_lon, n_rows, n_columns = grid
    counts = np.zeros((n_rows, n_columns), dtype=np.int64)
    cells = cells.with_columns(
        pl.col("cell_row").cast(pl.Int64).clip(0, n_rows - 1),
        pl.col("cell_column").cast(pl.Int64).clip(0, n_columns - 1),
    )
    np.add.at(
        counts,
        (cells["cell_row"].to_numpy(), cells["cell_column"].to_numpy()),
        cells["points"].to_numpy(),
    )
    return Density(south=south, west=west, cell_lat=cell_lat, cell_lon=cell_lon, counts=counts)
