"""The ``etl4all`` command line.

Exit codes: 0 success, 1 an etl4all error (source, geocoder, broker, warehouse…),
2 a configuration or usage error. Errors are reported as one line on stderr.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from etl4all import __version__, options, urls
from etl4all.errors import ConfigError, Etl4allError
from etl4all.logs import configure_logging
from etl4all.settings import Settings

if TYPE_CHECKING:
    from etl4all.runners.embedded import RunSummary

log = logging.getLogger(__name__)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="etl4all")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="etl4all")
def cli() -> None:
    """etl4all: GPS coordinate files to a warehouse of street addresses.

    Reads data_points files (local folders or FTP), reverse-geocodes every distinct
    coordinate once (offline, Google or Nominatim) and loads one row per coordinate into
    DuckDB or MySQL. Settings come from flags > ETL4ALL_* variables > --pipeline TOML >
    defaults.
    """


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map exceptions to exit codes with a one-line reason on stderr."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {urls.redact(str(exc))}", err=True)
            sys.exit(2)
        except Etl4allError as exc:
            click.echo(f"error: {urls.redact(str(exc))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def load_settings(pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> Settings:
    """Settings from the pipeline file, the environment and ``flags``; sets up logging."""
    settings = Settings.load(pipeline, overrides=flags)
    level = settings.log_level
    if quiet:
        level = "WARNING"
    elif verbose:
        level = "DEBUG" if verbose > 1 else "INFO"
    configure_logging(level.upper())
    return settings


@contextmanager
def file_progress(enabled: bool) -> Iterator[tuple[Callable[..., None], Callable[..., None]]]:
    """(on_start, on_file) callbacks drawing a progress bar of files on a terminal."""
    with ExitStack() as stack:
        bars: list[Any] = []

        def on_start(refs: list[Any]) -> None:
            if enabled and refs:
                bars.append(
                    stack.enter_context(
                        click.progressbar(
                            length=sum(ref.size for ref in refs),
                            label="files",
                            file=sys.stderr,
                            show_pos=False,
                            show_percent=True,
                            show_eta=True,
                            item_show_func=lambda ref: ref.name if ref else None,
                        )
                    )
                )

        def on_file(ref: Any) -> None:
            if bars:
                bars[0].update(ref.size, ref)

        yield on_start, on_file


@cli.command()
@click.argument("sources", nargs=-1)
@options.WAREHOUSE
@options.STATE
@options.LOOKUP
@options.BROKER
@options.QUEUE_PREFIX
@options.PATTERN
@options.BATCH
@options.GEOCODING
@options.FORCE
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def run(
    sources: tuple[str, ...], pipeline: str | None, verbose: int, quiet: bool, **flags: Any
) -> None:
    """Process SOURCES (folders, files, file:// or ftp:// URLs) end to end.

    Files already done (same size and mtime, or same content) are skipped, unless --force
    (all of them) or --force-file NAME (those named) redoes them. Without SOURCES the
    source_url setting (ETL4ALL_SOURCE_URL) is used.
    """
    from etl4all.runners import embedded

    interactive = sys.stderr.isatty() and not quiet
    settings = load_settings(pipeline, verbose, quiet, **flags)
    if interactive and not verbose:  # the progress bar shows what INFO lines would
        logging.getLogger().setLevel(logging.WARNING)
    paths = list(sources) or ([settings.source_url] if settings.source_url else [])
    if not paths:
        raise click.UsageError("give at least one SOURCE (or set ETL4ALL_SOURCE_URL)")
    if settings.broker_url:
        if len(paths) > 1:
            raise click.UsageError("with --broker give exactly one SOURCE")
        run_through_broker(settings.replace(source_url=paths[0], settle_seconds=0))
        return
    with file_progress(interactive) as (on_start, on_file):
        summary = embedded.run(paths, settings, on_start=on_start, on_file=on_file)
    print_summary(summary, settings)


def print_summary(summary: RunSummary, settings: Settings) -> None:
    """The final report of ``etl4all run``."""
    geo, load = summary.geocode, summary.load
    rejects = sum(summary.rejects.values())
    reasons = ", ".join(f"{r}={n}" for r, n in sorted(summary.rejects.items())) or "none"
    lines = [
        f"files       {summary.processed} processed, {summary.skipped} skipped (already done)"
        + (f", {summary.busy} busy (claimed by another worker)" if summary.busy else ""),
        f"points      {summary.points}",
        f"rejects     {rejects} ({reasons})",
        f"distinct    {geo.distinct} coordinates at {settings.geocode_precision} decimals "
        "(counted per batch)",
        f"geocoded    {geo.geocoded} with {settings.geocoder}",
    ]
    if settings.geocoder != "offline":
        lines.append(
            f"api         {geo.cache_hits} cache hits, {geo.calls} calls, {geo.retries} retries, "
            f"{geo.zero_results} ZERO_RESULTS, {geo.qps:.1f} QPS"
        )
    lines += [
        f"warehouse   {load.inserted} inserted, {load.updated} updated, "
        f"{load.unchanged} unchanged → {urls.redact(settings.warehouse_url)}",
        f"elapsed     {summary.seconds:.2f} s, {summary.points_per_second:,.0f} points/s",
    ]
    click.echo("\n".join(lines))


@cli.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the points to this Parquet file and the rejects beside it (NAME.rejects.parquet).",
)
@handle_errors
def parse_command(files: tuple[str, ...], output: str | None) -> None:
    """Parse data_points FILES and report points and rejects per reason."""
    import polars as pl

    from etl4all import parse

    results = [parse.parse(Path(f).read_bytes(), Path(f).name) for f in files]
    points = pl.concat([r.points for r in results])
    rejects = pl.concat([r.rejects for r in results])
    click.echo(f"points   {points.height}")
    click.echo(f"rejects  {rejects.height}")
    for reason, count in sorted(rejects.get_column("reason").value_counts().rows()):
        click.echo(f"  {reason:<18} {count}")
    if output:
        out = Path(output)
        points.write_parquet(out)
        rejects_path = out.with_name(out.stem + ".rejects.parquet")
        rejects.write_parquet(rejects_path)
        click.echo(f"wrote {out} and {rejects_path}")


def _center(value: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in value.split(","))
    except ValueError as exc:
        raise click.BadParameter("expected LAT,LNG, e.g. -30.0346,-51.2177") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise click.BadParameter("latitude must be within ±90 and longitude within ±180")
    return lat, lon


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option(
    "--files", default=3, show_default=True, type=click.IntRange(min=1), help="Files to write."
)
@click.option(
    "--points",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Records per file.",
)
@click.option(
    "--center",
    default="-30.0346,-51.2177",
    show_default=True,
    callback=lambda ctx, param, value: _center(value),
    help="Centre LAT,LNG of the points (default Porto Alegre).",
)
@click.option(
    "--radius-km",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Points lie within this distance of the centre.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same files.")
@click.option(
    "--dirty-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of records missing one of their lines.",
)
@click.option(
    "--duplicate-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of coordinates repeating an earlier one.",
)
def sample(out_dir: str, center: tuple[float, float], **opts: Any) -> None:
    """Write realistic data_points files into OUT_DIR (CRLF, DMS text, 8 decimals)."""
    from etl4all.sample import write_sample

    paths = write_sample(Path(out_dir), center=center, **opts)
    click.echo(f"wrote {len(paths)} files with {opts['points']} records each to {out_dir}")


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@options.STATE
@options.PATTERN
@options.GEOCODING
@click.option(
    "--price-per-1000",
    "price_per_1000",
    envvar="ETL4ALL_PRICE_PER_1000",
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=None,
    help="USD per 1,000 API calls (default 5.00, Google's list price).",
)
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def estimate(
    sources: tuple[str, ...], pipeline: str | None, verbose: int, quiet: bool, **flags: Any
) -> None:
    """Count the API calls and cost of geocoding SOURCES, without calling any API."""
    from etl4all.runners.estimate import estimate as count

    settings = load_settings(pipeline, verbose, quiet or not verbose, **flags)
    result = count(sources, settings)
    click.echo(f"files          {result.files}")
    click.echo(f"points         {result.points}")
    click.echo(f"distinct keys  {result.distinct} at {settings.geocode_precision} decimals")
    click.echo(f"already cached {result.cached}")
    click.echo(f"calls needed   {result.calls} ({settings.geocoder})")
    click.echo(f"estimated cost {result.cost:.2f} USD at {settings.price_per_1000:.2f} per 1000")


@cli.command()
@click.option(
    "--from-geocoder",
    "from_geocoders",
    multiple=True,
    metavar="NAME",
    help="Choose the rows this geocoder answered (the geocoder column: offline, google, "
    "nominatim); repeatable.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="Choose the rows with this geocode_status (OK, ZERO_RESULTS), or 'failed': the "
    "points no geocoder answered (kept as rejects, whatever geocoder); repeatable.",
)
@click.option(
    "--dry-run", is_flag=True, help="Only count the chosen rows and the API calls they need."
)
@options.WAREHOUSE
@options.STATE
@options.LOOKUP
@options.BATCH
@options.GEOCODING
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def regeocode(
    from_geocoders: tuple[str, ...],
    statuses: tuple[str, ...],
    dry_run: bool,
    pipeline: str | None,
    verbose: int,
    quiet: bool,
    **flags: Any,
) -> None:
    """Geocode rows already in the warehouse again, with --geocoder, and load them back.

    Rows are chosen by --from-geocoder and/or --status (both given: rows matching both),
    e.g. every offline row after switching to Google: --from-geocoder offline --geocoder
    google. The address columns take the new answers; file, line, distance and bearing stay.
    Cached answers cost nothing; --max-calls caps the rest. Run it again after a stop.
    """
    from etl4all.runners import regeocode as driver

    if not (from_geocoders or statuses):
        raise click.UsageError("choose the rows with --from-geocoder and/or --status")
    settings = load_settings(pipeline, verbose, quiet, **flags)
    selection = driver.Selection(geocoders=from_geocoders, statuses=statuses)
    if dry_run:
        found = driver.plan(selection, settings)
        click.echo(f"chosen      {found.rows} rows, {found.failed} failed points")
        click.echo(
            f"distinct    {found.distinct} coordinates at {settings.geocode_precision} decimals"
        )
        click.echo(f"cached      {found.cached}")
        click.echo(f"calls       {found.calls} ({settings.geocoder}); nothing was changed")
        return
    done = driver.regeocode(selection, settings)
    geo, load = done.geocode, done.load
    lines = [
        f"chosen      {done.rows} rows, {done.failed} failed points",
        f"geocoded    {geo.geocoded} coordinates with {settings.geocoder}, "
        f"{done.rejects} points not answered (kept as rejects)",
    ]
    if settings.geocoder != "offline":
        lines.append(
            f"api         {geo.cache_hits} cache hits, {geo.calls} calls, {geo.retries} retries"
        )
    lines.append(
        f"warehouse   {load.updated} updated, {load.inserted} inserted, {load.unchanged} "
        f"unchanged → {urls.redact(settings.warehouse_url)}"
    )
    click.echo("\n".join(lines))


def run_through_broker(settings: Settings) -> None:
    """``etl4all run --broker``: the three stages in this process, through RabbitMQ."""
    import threading

    from etl4all.runners.broker import run_all

    report = run_all(settings, threading.Event())
    extract, transform, load = report.extract, report.transform, report.load
    click.echo(
        f"extract     {extract.files} files, {extract.batches} batches, {extract.points} points, "
        f"{sum(extract.rejects.values())} rejects, {extract.skipped} unchanged\n"
        f"transform   {transform.acked} batches, {transform.dead_lettered} dead-lettered\n"
        f"load        {load.acked} batches, {load.dead_lettered} dead-lettered\n"
        f"elapsed     {report.seconds:.2f} s"
    )


@cli.command("run-stage")
@click.argument("stage", type=click.Choice(["extract", "transform", "load"]))
@options.SOURCE
@options.PATTERN
@options.SERVICES
@options.STATE
@options.LOOKUP
@options.WAREHOUSE
@options.BATCH
@options.GEOCODING
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def run_stage(stage: str, pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> None:
    """Run one services-mode STAGE worker: extract, transform or load.

    extract polls the source and publishes point batches; transform geocodes them and
    publishes address batches; load writes them to the warehouse. Run as many replicas of
    each as the load needs. SIGTERM/SIGINT finish the current batch and exit 0.
    """
    import threading

    from etl4all.runners.broker import run_stage as run_one
    from etl4all.stages.worker import install_signal_handlers

    settings = load_settings(pipeline, verbose, quiet, **flags)
    if settings.broker_url is None:
        raise ConfigError("run-stage needs a broker: --broker amqp://... or ETL4ALL_BROKER_URL")
    stop = threading.Event()
    restore = install_signal_handlers(stop)
    try:
        run_one(stage, settings, stop)
    finally:
        restore()


@cli.command("init-db")
@options.WAREHOUSE
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def init_db(pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> None:
    """Create the warehouse database and tables (idempotent; utf8mb4 on MySQL)."""
    from etl4all.runners import wiring

    settings = load_settings(pipeline, verbose, quiet, **flags)
    with wiring.open_warehouse(settings) as wh:
        wh.init()
        rows = wh.count()
    click.echo(f"warehouse ready: {urls.redact(settings.warehouse_url)} ({rows} rows)")


@cli.command()
@options.BROKER
@options.QUEUE_PREFIX
@options.STATE
@options.WAREHOUSE
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def status(pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> None:
    """Show queue depths (incl. dead letters), warehouse rows, files done and cache size."""
    from etl4all.broker import queues
    from etl4all.runners import wiring

    settings = load_settings(pipeline, verbose, quiet or not verbose, **flags)
    if settings.broker_url:
        with wiring.open_broker(settings) as bus:
            for name in (queues.POINTS, queues.ADDRESSES, queues.DEAD):
                full = queues.name(settings.queue_prefix, name)
                click.echo(f"queue {full:<24} {bus.depth(full)}")
    with wiring.open_warehouse(settings) as wh:
        click.echo(f"warehouse rows  {wh.count()}  {urls.redact(settings.warehouse_url)}")
    with wiring.open_state(settings) as store:
        click.echo(f"files done      {store.done_count()}")
        click.echo(f"cache entries   {store.cache_size()}")
