"""``etl4all run``, ``estimate`` and ``regeocode``: the commands that geocode and load."""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from etl4all import exits, options, urls
from etl4all.commands.common import (
    handle_errors,
    load_settings,
    moves_data,
    say,
)
from etl4all.errors import ConfigError, Etl4allError
from etl4all.settings import Settings

if TYPE_CHECKING:
    from etl4all.runners.embedded import RunSummary
    from etl4all.stages.transform import GeocodeStats

log = logging.getLogger(__name__)


@click.command()
@click.argument("sources", nargs=-1)
@options.WAREHOUSE
@options.STATE
@options.LOOKUP
@options.BROKER
@options.QUEUE_PREFIX
@options.PATTERN
@options.BATCH
@options.FINAL
@options.GEOCODING
@options.FORCE
@options.ACCEPT_SHRINK
@options.CLAIM_WAIT
@options.LOG_FORMAT
@click.option(
    "--fail-on-rejects",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    metavar="RATE",
    help="Exit 1 when more than RATE (0..1) of the records read were rejected (a bad record "
    "is one reject), e.g. 0.05; everything valid is loaded all the same.",
)
@options.PIPELINE
@options.VERBOSITY
@handle_errors
@moves_data
def run(
    sources: tuple[str, ...],
    pipeline: str | None,
    verbose: int,
    quiet: bool,
    fail_on_rejects: float | None,
    **flags: Any,
) -> None:
    """Process SOURCES (folders, files, or file, ftp, ftps, sftp or s3 URLs) end to end.

    Files already done (same size and mtime, or same content) are skipped, unless --force
    (all of them) or --force-file NAME (those named) redoes them. A file that became empty
    or a prefix of the version loaded is held (its rows stay; exit 3) unless
    --accept-shrink NAME. Without SOURCES the source_url setting (ETL4ALL_SOURCE_URL) is used.
    """
    started = time.perf_counter()
    settings = load_settings(pipeline, verbose, quiet, **flags)
    interactive = sys.stderr.isatty() and not quiet and settings.log_format != "json"
    paths = list(sources) or ([settings.source_url] if settings.source_url else [])
    if not paths:
        raise click.UsageError("give at least one SOURCE (or set ETL4ALL_SOURCE_URL)")
    if not settings.broker_url:
        from etl4all.runners.nothing_new import done_files

        done = done_files(paths, settings)
        if done is not None:
            print_nothing_new(done, settings, time.perf_counter() - started)
            return

    from etl4all.operations import check
    from etl4all.progress import run_bar
    from etl4all.runners import embedded

    if settings.broker_url:
        if len(paths) > 1:
            raise click.UsageError("with --broker give exactly one SOURCE")
        settings = settings.replace(source_url=paths[0], settle_seconds=0)
        check.require(settings, check.RUN_BROKER)
        run_through_broker(settings, interactive)
        return
    check.require(settings, check.RUN, sources=paths)
    summary = embedded.RunSummary()
    try:
        with run_bar(interactive, paid=settings.geocoder != "offline") as bar:
            embedded.run(paths, settings, progress=bar, summary=summary)
    except (Etl4allError, KeyboardInterrupt) as stopped:
        if not isinstance(stopped, ConfigError):  # stopped midway: say what was done
            print_summary(summary, settings)
            _attention(summary)
        raise
    print_summary(summary, settings)
    code = _attention(summary)
    if not summary.files:
        say(
            f"no file matches {settings.file_pattern!r} in {', '.join(paths)} "
            "(--pattern sets what to match)",
            label="warning",
            level=logging.WARNING,
        )
    share = summary.reject_rate
    if fail_on_rejects is not None and share > fail_on_rejects:
        code = code or exits.TRANSIENT
        say(
            f"{share:.1%} of the records read were rejected "
            f"({sum(summary.rejects.values())} of {summary.records}), above "
            f"--fail-on-rejects {fail_on_rejects:g}; the valid ones were loaded",
            exit_code=code,
        )
    if code:
        sys.exit(code)


def _attention(summary: RunSummary) -> int:
    """Say what the run left for later or for a person; the exit code that tells cron."""
    for held in summary.held:
        say(str(held), label="held", level=logging.WARNING)
    for busy in summary.busy_files:
        say(
            f"{busy}; not done by this run (--claim-wait sets how long to wait)",
            label="busy",
            level=logging.WARNING,
        )
    for aside in summary.set_aside:
        say(
            f"{aside}; its file is not done: run again to finish it",
            label="set aside",
            level=logging.WARNING,
        )
    if summary.busy_files or summary.set_aside:
        return exits.TRANSIENT
    return exits.ATTENTION if summary.held else exits.DONE


def print_summary(summary: RunSummary, settings: Settings) -> None:
    """The final report of ``etl4all run``."""
    geo, load = summary.geocode, summary.load
    rejects = sum(summary.rejects.values())
    reasons = ", ".join(f"{r}={n}" for r, n in sorted(summary.rejects.items())) or "none"
    lines = [
        f"files       {summary.processed} processed, {summary.skipped} skipped (already done)"
        + (f", {summary.busy} busy (claimed by another worker)" if summary.busy else "")
        + (f", {len(summary.held)} held (shrank to a prefix)" if summary.held else "")
        + (f", {len(summary.set_aside)} batches set aside" if summary.set_aside else "")
        + (f", {summary.partial} without a cut-off last record" if summary.partial else ""),
        f"records     {summary.records} read, {rejects} rejected ({summary.reject_rate:.1%})",
        f"points      {summary.points} ({summary.distinct} distinct coordinates, "
        f"{summary.repeats} repeat an earlier point)",
        f"rejects     {rejects} ({reasons})",
        f"geocoded    {geo.geocoded} keys at {settings.geocode_precision} decimals "
        f"with {settings.geocoder}",
    ]
    if settings.geocoder != "offline":
        lines.append(
            f"api         {geo.cache_hits} from the cache, {geo.calls} calls, {geo.retries} "
            f"retries, {geo.zero_results} ZERO_RESULTS, {geo.qps:.1f} QPS"
        )
        lines += rate_lines(geo, settings)
    lines += [
        f"warehouse   {load.inserted} inserted, {load.updated} updated, "
        f"{load.unchanged - summary.reloaded} unchanged (already there)"
        + (f", {summary.pruned} pruned (no file holds them any more)" if summary.pruned else "")
        + f" → {urls.redact(settings.warehouse_url)}",
        f"elapsed     {summary.seconds:.2f} s, {summary.points_per_second:,.0f} points/s",
    ]
    click.echo("\n".join(lines))


def print_nothing_new(files: int, settings: Settings, seconds: float) -> None:
    """The final report of a run that found every file done (:mod:`etl4all.runners.nothing_new`)."""
    click.echo(
        f"files       0 processed, {files} skipped (already done)\n"
        f"nothing new every file is done: nothing was read, geocoded or loaded "
        f"→ {urls.redact(settings.warehouse_url)}\n"
        f"elapsed     {seconds:.2f} s"
    )


def rate_lines(geo: GeocodeStats, settings: Settings) -> list[str]:
    """The summary line of the adaptive rate, when the API answered over its rate limit:
    the rate reached and, when it stayed below ``--qps``, the ``--qps`` to set."""
    report = geo.rate
    if report is None or not (geo.rate_limited or report.slow_downs):
        return []
    answer = "OVER_QUERY_LIMIT" if settings.geocoder == "google" else "HTTP 429"
    told = (
        f"{geo.rate_limited} {answer} answers ({geo.rate_limited / max(geo.calls, 1):.1%} of "
        f"the calls), {report.slow_downs} slow-down{'s' if report.slow_downs != 1 else ''}"
    )
    suggested = report.suggested_qps
    if suggested is None or report.peak is None:
        return [f"rate        {report.rate:.1f} QPS, --qps {report.qps:g}; {told}"]
    return [
        f"rate        settled at {report.peak:.1f} QPS (quota below --qps {report.qps:g}?): "
        f"set --qps {suggested:g}; {told}"
    ]


_STAGE_LINES = {
    "extract": "extract     reading the files and publishing their batches…",
    "transform": "transform   geocoding the point batches…",
    "load": "load        loading the address batches…",
}
"""What ``run --broker`` shows on a terminal as each stage starts."""


def run_through_broker(settings: Settings, interactive: bool) -> None:
    """``etl4all run --broker``: the three stages in this process, through RabbitMQ; on a
    terminal (``interactive``) a line as each stage starts."""
    import threading

    from etl4all.runners.broker import run_all

    def on_stage(stage: str) -> None:
        if interactive:
            click.echo(_STAGE_LINES[stage], err=True)

    report = run_all(settings, threading.Event(), on_stage)
    extract, transform, load = report.extract, report.transform, report.load
    unreadable = sum(extract.rejects.values())
    click.echo(
        f"extract     {extract.files} files, {extract.batches} batches, "
        f"{extract.points + unreadable} records ({extract.points} points, {unreadable} "
        f"rejected), {extract.skipped} unchanged"
        + (f", {len(extract.held)} held" if extract.held else "")
        + f"\ntransform   {transform.acked} batches, {transform.dead_lettered} dead-lettered\n"
        f"load        {load.acked} batches, {load.dead_lettered} dead-lettered\n"
        f"elapsed     {report.seconds:.2f} s"
    )
    for held in extract.held:
        click.echo(f"held: {held}", err=True)
    if extract.held:
        sys.exit(exits.ATTENTION)


@click.command()
@click.argument("sources", nargs=-1, required=True)
@options.STATE
@options.PATTERN
@options.GEOCODING
@options.setting(
    "price_per_1000",
    "--price-per-1000",
    help="USD per 1,000 API calls (default {default:.2f}, Google's list price).",
)
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def estimate(
    sources: tuple[str, ...], pipeline: str | None, verbose: int, quiet: bool, **flags: Any
) -> None:
    """Count the API calls and cost of geocoding SOURCES, without calling any API."""
    from etl4all.operations.estimate import estimate as count

    settings = load_settings(pipeline, verbose, quiet, **flags)
    result = count(sources, settings)
    click.echo(f"files          {result.files}")
    click.echo(f"points         {result.points}")
    click.echo(f"distinct keys  {result.distinct} at {settings.geocode_precision} decimals")
    click.echo(f"already cached {result.cached}")
    click.echo(f"calls needed   {result.calls} ({settings.geocoder})")
    click.echo(f"estimated cost {result.cost:.2f} USD at {settings.price_per_1000:.2f} per 1000")


@click.command()
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
    type=click.Choice(["OK", "ZERO_RESULTS", "failed"]),
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
@moves_data
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
    from etl4all.operations import check
    from etl4all.operations import regeocode as driver

    if not (from_geocoders or statuses):
        raise click.UsageError("choose the rows with --from-geocoder and/or --status")
    settings = load_settings(pipeline, verbose, quiet, **flags)
    selection = driver.Selection(geocoders=from_geocoders, statuses=statuses)
    check.require(settings, driver.DRY_RUN_CHECKS if dry_run else driver.CHECKS)
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
        lines += rate_lines(geo, settings)
    lines.append(
        f"warehouse   {load.updated} updated, {load.inserted} inserted, {load.unchanged} "
        f"unchanged → {urls.redact(settings.warehouse_url)}"
    )
    click.echo("\n".join(lines))
