"""Generate realistic data_points files for ``etl4all sample``.

Points are spread uniformly over a disc around a centre; each record carries the distance
and bearing from the centre, the DMS text and 8-decimal values, with CRLF endings, exactly
like the files the field devices upload. Some records can miss a line (``dirty_rate``) and
some coordinates can repeat earlier ones (``duplicate_rate``). The same seed gives the same
files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

EARTH_RADIUS_KM = 6371.0088
PORTO_ALEGRE = (-30.0346, -51.2177)
FIRST_DAY = dt.date(2018, 1, 1)


def records(
    *,
    files: int,
    points: int,
    center: tuple[float, float] = PORTO_ALEGRE,
    radius_km: float = 5.0,
    seed: int = 0,
    dirty_rate: float = 0.0,
    duplicate_rate: float = 0.0,
) -> pl.DataFrame:
    """The records to write: one row per record, ``points`` per file.

    Columns: ``file``, ``latitude``, ``longitude`` (rounded to 8 decimals), ``distance_km``
    (4), ``bearing_deg`` (3), and ``drop``: the line left out of a dirty record
    (``"lat"``, ``"lon"``, ``"dist"``) or null.
    """
    rng = np.random.default_rng(seed)
    n = files * points
    distance = radius_km * np.sqrt(rng.random(n))
    bearing = rng.random(n) * 360.0
    lat, lon = _destination(center, distance, bearing)

    repeat = rng.random(n) < duplicate_rate
    originals_before: np.ndarray = np.cumsum(~repeat) - (~repeat)
    repeat &= originals_before > 0
    originals = np.flatnonzero(~repeat)
    pick = originals[(rng.random(n) * np.maximum(originals_before, 1)).astype(np.int64)]
    source = np.where(repeat, pick, np.arange(n))
    lat, lon, distance, bearing = lat[source], lon[source], distance[source], bearing[source]

    dirty = rng.random(n) < dirty_rate
    which = rng.integers(0, 3, n)
    drop = pl.Series("drop", np.array(["lat", "lon", "dist"])[which]).set(pl.Series(~dirty), None)
    names = [f"data_points_{FIRST_DAY + dt.timedelta(days=i):%Y%m%d}.txt" for i in range(files)]
    return pl.DataFrame(
        {
            "file": np.repeat(names, points),
            "latitude": np.round(lat, 8),
            "longitude": np.round(lon, 8),
            "distance_km": np.round(distance, 4),
            "bearing_deg": np.round(bearing, 3),
            "drop": drop,
        }
    )


def render(file_records: pl.DataFrame) -> bytes:
    """The bytes of one file holding ``file_records`` (CRLF line endings, UTF-8)."""
    if file_records.is_empty():
        return b""
    drop = pl.col("drop")
    lines = file_records.select(
        pl.concat_list(
            pl.when(drop.ne_missing("lat")).then(_line("Latitude", "latitude", "N", "S")),
            pl.when(drop.ne_missing("lon")).then(_line("Longitude", "longitude", "E", "W")),
            pl.when(drop.ne_missing("dist")).then(
                pl.format(
                    "Distance: {} km  Bearing: {}°",
                    pl.col("distance_km").cast(pl.String),
                    pl.col("bearing_deg").cast(pl.String),
                )
            ),
        ).alias("line")
    )
    text = lines.get_column("line").explode().drop_nulls().str.join("\r\n").item()
    return str(text).encode("utf-8")


def write_sample(out_dir: Path, **options: object) -> list[Path]:
    """Write the files of :func:`records` (``options``) into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = records(**options)  # type: ignore[arg-type]
    paths = []
    for (name,), part in table.group_by("file", maintain_order=True):
        path = out_dir / str(name)
        path.write_bytes(render(part))
        paths.append(path)
    return paths


def _destination(
    center: tuple[float, float], distance_km: np.ndarray, bearing_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``distance_km`` away from ``center`` on ``bearing_deg`` (great circle)."""
    lat1, lon1 = np.radians(center[0]), np.radians(center[1])
    angle = distance_km / EARTH_RADIUS_KM
    theta = np.radians(bearing_deg)
    lat2 = np.arcsin(np.sin(lat1) * np.cos(angle) + np.cos(lat1) * np.sin(angle) * np.cos(theta))
    lon2 = lon1 + np.arctan2(
        np.sin(theta) * np.sin(angle) * np.cos(lat1), np.cos(angle) - np.sin(lat1) * np.sin(lat2)
    )
    lon2 = (lon2 + np.pi) % (2 * np.pi) - np.pi
    return np.degrees(lat2), np.degrees(lon2)


def _line(label: str, column: str, positive: str, negative: str) -> pl.Expr:
    """``Latitude: 30°02′59″S   -30.04982864`` for each value of ``column``."""
    value = pl.col(column)
    seconds = (value.abs() * 3600).round(0).cast(pl.Int64)
    return pl.format(
        label + ": {}°{}′{}″{}   {}",
        (seconds // 3600).cast(pl.String),
        ((seconds % 3600) // 60).cast(pl.String).str.zfill(2),
        (seconds % 60).cast(pl.String).str.zfill(2),
        pl.when(value < 0).then(pl.lit(negative)).otherwise(pl.lit(positive)),
        value.cast(pl.String),
    )
