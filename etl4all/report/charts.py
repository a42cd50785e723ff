"""The report's charts, drawn with matplotlib into figures (PNG for the page).

Why matplotlib: it draws static images in-process, with no browser, no JavaScript and no
network (the Agg renderer), so the page opens offline and the same figures show inline in a
notebook; it rasterizes a 20,000-point scatter in a fraction of a second, where an SVG or a
Vega spec would carry every point. Altair needs vl-convert (a bundled JavaScript engine)
to do the same, and its notebook renderer fetches Vega from a CDN.

Figures are built with :class:`matplotlib.figure.Figure`, never through pyplot's global
state, so building a report changes no backend. The map uses the Web Mercator projection.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from etl4all.report.facts import Density

COLORS = 10
"""Categories that get their own colour on the map; the rest are grey."""
_OTHER = "#c4c4c4"
_PALETTE = [colormaps["tab10"](i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + ["#222222"]
"""tab10 with its grey (the colour of "other") replaced by near-black."""
_BAR = "#3a6ea5"


def mercator_y(latitude: np.ndarray) -> np.ndarray:
    """Web Mercator northing (in radians of the sphere) of latitudes in degrees."""
    return np.log(np.tan(np.pi / 4 + np.radians(np.clip(latitude, -85, 85)) / 2))


def map_figure(sample: pl.DataFrame, color_by: str) -> Figure:
    """The points of ``sample`` on a Web Mercator plane, coloured by the ``COLORS`` most
    frequent values of ``color_by`` (``neighborhood`` or ``city``), the rest grey."""
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.add_subplot()
    top = sample.drop_nulls(color_by).get_column(color_by).value_counts(sort=True).head(COLORS)
    groups = top.get_column(color_by).to_list()
    others = sample.filter(~pl.col(color_by).is_in(groups) | pl.col(color_by).is_null())
    if others.height:
        _scatter(ax, others, _OTHER, f"other ({others.height:,})")
    for color, group in zip(_PALETTE, groups, strict=False):
        _scatter(ax, sample.filter(pl.col(color_by) == group), color, str(group))
    ax.set_title(f"{sample.height:,} points, coloured by {color_by}")
    latitudes = sample.get_column("latitude")
    _mercator_axes(ax, float(latitudes.min()), float(latitudes.max()))  # type: ignore[arg-type]
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, markerscale=3, frameon=False)
    return fig


def _scatter(ax: Axes, points: pl.DataFrame, color: Any, label: str) -> None:
    lon = points.get_column("longitude").to_numpy()
    lat = points.get_column("latitude").to_numpy()
    ax.scatter(lon, np.degrees(mercator_y(lat)), s=3, c=[color], label=label, linewidths=0)


def _mercator_axes(ax: Axes, south: float, north: float) -> None:
    """Equal scale on both axes; round latitudes and longitudes as ticks."""
    ax.set_aspect("equal")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ticks = np.asarray(MaxNLocator(6).tick_values(south, north), dtype=float)
    latitudes = ticks[(ticks >= south) & (ticks <= north)]
    ax.set_yticks(np.degrees(mercator_y(latitudes)), [f"{v:g}" for v in latitudes])


def density_figure(density: Density) -> Figure:
    """Points per grid cell on the Web Mercator plane, on a log colour scale."""
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.add_subplot()
    rows, columns = density.counts.shape
    lon_edges = density.west + density.cell_lon * np.arange(columns + 1)
    lat_edges = density.south + density.cell_lat * np.arange(rows + 1)
    counts = np.ma.masked_equal(density.counts, 0)
    peak = max(2, int(density.counts.max()))
    mesh = ax.pcolormesh(
        lon_edges,
        np.degrees(mercator_y(lat_edges)),
        counts,
        cmap="magma_r",
        norm=LogNorm(1, peak) if peak > 50 else Normalize(0, peak),
    )
    fig.colorbar(mesh, ax=ax, label="points per cell", shrink=0.8)
    cell_m = density.cell_lat * 111_320
    ax.set_title(f"Point density (cells of about {cell_m:,.0f} m)")
    _mercator_axes(ax, density.south, density.north)
    return fig


def bar_figure(frame: pl.DataFrame, label: str, value: str, title: str) -> Figure:
    """Horizontal bars of ``value`` per ``label``, the first row on top."""
    fig = Figure(figsize=(8, 0.8 + 0.28 * max(frame.height, 1)), layout="constrained")
    ax = fig.add_subplot()
    labels = [str(v) if v is not None else "(none)" for v in frame.get_column(label).to_list()]
    ax.barh(labels[::-1], frame.get_column(value).to_list()[::-1], color=_BAR)
    ax.set_title(title)
    ax.set_xlabel(value)
    ax.tick_params(axis="y", labelsize=8)
    return fig


def files_figure(files: pl.DataFrame) -> Figure:
    """Points per source file in the order they were first loaded, and the running total."""
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ordered = files.sort("first_loaded", "source_file", nulls_last=True)
    labels = [str(name) for name in ordered.get_column("source_file").to_list()]
    points = ordered.get_column("points").to_numpy()
    x = np.arange(len(labels))
    ax.bar(x, points, color=_BAR, label="points")
    ax.set_ylabel("points (rows) per file")
    total = ax.twinx()
    total.plot(x, np.cumsum(points), color="#d1495b", marker="o", label="running total")
    total.set_ylabel("running total")
    total.set_ylim(bottom=0)
    step = max(1, len(labels) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=30, ha="right", fontsize=7)
    ax.set_title("Points per source file, in load order")
    return fig


def png(fig: Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes (rendered by Agg, no display needed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
