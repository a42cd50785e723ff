"""``etl4all report``: an HTML report on the warehouse, with maps and charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from etl4all import options
from etl4all.commands.common import handle_errors, load_settings


@click.command()
@options.WAREHOUSE
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write (one self-contained file that opens offline).",
)
@click.option(
    "--top",
    type=click.IntRange(1, 200),
    default=15,
    show_default=True,
    help="Neighborhoods and streets in the top lists and bar charts.",
)
@click.option(
    "--sample-points",
    type=click.IntRange(100),
    default=20_000,
    show_default=True,
    help="At most this many points on the map (every Nth row); the density map counts all.",
)
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def report(
    out: Path,
    top: int,
    sample_points: int,
    pipeline: str | None,
    verbose: int,
    quiet: bool,
    **flags: Any,
) -> None:
    """Write an HTML report on the warehouse: headline numbers, geocoder coverage and the
    age of the geocodes against the provider's caching terms, a map and a density map of
    the points, the top neighborhoods and streets, points per source file, and the rejects.

    Everything is aggregated in the database by the queries of sql/analysis/; the page has
    its images inline and loads nothing from the network. Needs the report extra
    (pip install 'etl4all[report]', matplotlib).
    """
    from etl4all import urls
    from etl4all.report.build import write_report

    settings = load_settings(pipeline, verbose, quiet, **flags)
    written = write_report(settings.warehouse_url, out, top=top, sample_points=sample_points)
    click.echo(
        f"report: {written.path} ({written.bytes / 1024:,.0f} KiB; {written.rows:,} rows, "
        f"{written.files:,} files from {urls.redact(settings.warehouse_url)}) "
        f"in {written.seconds:.2f} s"
    )
