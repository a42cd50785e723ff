"""``write_report``: gather the facts, draw the charts, write the page (``etl4all report``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from pathlib import Path

from etl4all.errors import ConfigError
from etl4all.report import facts, page
from etl4all.report.queries import AnalysisDatabase

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Written:
    """What :func:`write_report` wrote."""

    path: Path
    bytes: int
    rows: int
    files: int
    seconds: float


def write_report(
    url: str,
    out: Path,
    *,
    top: int = 15,
    sample_points: int = 20_000,
    now: dt.datetime | None = None,
) -> Written:
    """Write the HTML report on the warehouse at ``url`` to ``out``.

    Args:
        top: rows of the top-neighborhood and top-street lists and charts.
        sample_points: at most this many points on the map (every Nth row).
        now: the time the geocode ages are measured at (default: now).

    Raises:
        ConfigError: a bad URL, a missing warehouse or tables, or ``out`` cannot be written.
        MissingDependencyError: matplotlib is missing (``pip install 'etl4all[report]'``).
        WarehouseError: the database failed.
    """
    started = time.perf_counter()
    from etl4all.report import charts_or_fail

    charts = charts_or_fail()
    with AnalysisDatabase(url=url) as db:
        data = facts.gather(db, top=top, sample_points=sample_points, now=now)
    images: dict[str, bytes] = {}
    if data.rows:
        with_neighborhoods = data.sample.get_column("neighborhood").drop_nulls().len() > 0
        color_by = "neighborhood" if with_neighborhoods else "city"
        figures = {"map": charts.map_figure(data.sample, color_by)}
        if data.density is not None:
            figures["density"] = charts.density_figure(data.density)
        if data.neighborhoods.height:
            figures["neighborhoods"] = charts.bar_figure(
                data.neighborhoods, "neighborhood", "points", "Top neighborhoods"
            )
        if data.streets.height:
            figures["streets"] = charts.bar_figure(data.streets, "street", "points", "Top streets")
        figures["files"] = charts.files_figure(data.files)
        images = {name: charts.png(fig) for name, fig in figures.items()}
    text = page.render(data, images)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    seconds = time.perf_counter() - started
    log.info("report on %s: %d rows, %.2f s", data.url, data.rows, seconds)
    return Written(out, len(text.encode()), data.rows, int(data.headline["files"]), seconds)
