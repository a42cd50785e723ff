"""The ``etl4all`` command line.

Exit codes: 0 success, 1 an etl4all error (source, geocoder, broker, warehouse…),
2 a configuration or usage error, 3 (``status`` only) dead letters wait in the dead-letter
queue, so cron can alert (``etl4all dead-letters list`` shows them). Errors are reported as
one line on stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from etl4all import __version__, options, urls
from etl4all.errors import ConfigError, Etl4allError
from etl4all.logs import configure_logging
from etl4all.progress import run_bar
from etl4all.settings import Settings

if TYPE_CHECKING:
    from etl4all.broker.base import Broker
    from etl4all.runners.embedded import RunSummary

log = logging.getLogger(__name__)

EXIT_DEAD_LETTERS = 3
"""Exit code of ``status`` when dead letters wait."""
RETRY_HINT = (
    "; a temporary fault: run the same command again once the service is back (nothing is "
    "lost: a failed batch is not committed, finished files are skipped, paid answers are cached)"
)


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


def moves_data(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command that processes data: a temporary fault's message says to rerun it."""
    func.moves_data = True  # type: ignore[attr-defined]
    return func


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map exceptions to exit codes with a one-line reason on stderr."""
    hint_on_retryable = getattr(func, "moves_data", False)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {urls.redact(str(exc))}", err=True)
            sys.exit(2)
        except Etl4allError as exc:
            hint = RETRY_HINT if exc.retryable and hint_on_retryable else ""
            click.echo(f"error: {urls.redact(str(exc))}{hint}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


LEVELS = ("ERROR", "WARNING", "INFO", "DEBUG")


def load_settings(
    pipeline: str | None, verbose: int, quiet: bool, *, base: str = "WARNING", **flags: Any
) -> Settings:
    """Settings from the pipeline file, the environment and ``flags``; sets up logging.

    The log level is ``log_level`` if set, else ``base`` (WARNING; INFO for workers); each
    ``-v`` makes it one step more verbose, ``-q`` shows warnings and errors only.
    """
    settings = Settings.load(pipeline, overrides=flags)
    level = (settings.log_level or base).upper()
    if quiet:
        level = "WARNING"
    elif verbose:
        start = LEVELS.index(level) if level in LEVELS else 1
        level = LEVELS[min(start + verbose, len(LEVELS) - 1)]
    configure_logging(level)
    return settings


@cli.command()
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
@click.option(
    "--fail-on-rejects",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    metavar="RATE",
    help="Exit 1 when more than RATE (0..1) of the records read were rejected, e.g. 0.05; "
    "everything valid is loaded all the same.",
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
    """Process SOURCES (folders, files, file:// or ftp:// URLs) end to end.

    Files already done (same size and mtime, or same content) are skipped, unless --force
    (all of them) or --force-file NAME (those named) redoes them. Without SOURCES the
    source_url setting (ETL4ALL_SOURCE_URL) is used.
    """
    from etl4all.runners import check, embedded

    interactive = sys.stderr.isatty() and not quiet
    settings = load_settings(pipeline, verbose, quiet, **flags)
    paths = list(sources) or ([settings.source_url] if settings.source_url else [])
    if not paths:
        raise click.UsageError("give at least one SOURCE (or set ETL4ALL_SOURCE_URL)")
    if settings.broker_url:
        if len(paths) > 1:
            raise click.UsageError("with --broker give exactly one SOURCE")
        settings = settings.replace(source_url=paths[0], settle_seconds=0)
        check.require(settings, check.RUN_BROKER)
        run_through_broker(settings)
        return
    check.require(settings, check.RUN, sources=paths)
    with run_bar(interactive, paid=settings.geocoder != "offline") as bar:
        summary = embedded.run(paths, settings, progress=bar)
    print_summary(summary, settings)
    if not summary.files:
        click.echo(
            f"warning: no file matches {settings.file_pattern!r} in {', '.join(paths)} "
            "(--pattern sets what to match)",
            err=True,
        )
    rejects = sum(summary.rejects.values())
    share = rejects / (rejects + summary.points) if rejects else 0.0
    if fail_on_rejects is not None and share > fail_on_rejects:
        click.echo(
            f"error: {share:.1%} of the records read were rejected ({rejects}), above "
            f"--fail-on-rejects {fail_on_rejects:g}; the valid ones were loaded",
            err=True,
        )
        sys.exit(1)


def print_summary(summary: RunSummary, settings: Settings) -> None:
    """The final report of ``etl4all run``."""
    geo, load = summary.geocode, summary.load
    rejects = sum(summary.rejects.values())
    reasons = ", ".join(f"{r}={n}" for r, n in sorted(summary.rejects.items())) or "none"
    lines = [
        f"files       {summary.processed} processed, {summary.skipped} skipped (already done)"
        + (f", {summary.busy} busy (claimed by another worker)" if summary.busy else "")
        + (f", {summary.partial} without a cut-off last record" if summary.partial else ""),
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
    lines += [
        f"warehouse   {load.inserted} inserted, {load.updated} updated, "
        f"{load.unchanged - summary.reloaded} unchanged (already there)"
        + (f", {summary.pruned} pruned (gone from a changed file)" if summary.pruned else "")
        + f" → {urls.redact(settings.warehouse_url)}",
        f"elapsed     {summary.seconds:.2f} s, {summary.points_per_second:,.0f} points/s",
    ]
    click.echo("\n".join(lines))


WRITERS = {".parquet": "write_parquet", ".csv": "write_csv", ".ndjson": "write_ndjson"}
"""The formats ``parse -o`` writes, by file suffix."""


@cli.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the points to this file, in the format its suffix names (.parquet, .csv or "
    ".ndjson), and the rejects beside it (NAME.rejects.SUFFIX). Its folder must exist.",
)
@handle_errors
def parse_command(files: tuple[str, ...], output: str | None) -> None:
    """Parse data_points FILES and report points and rejects per reason."""
    import polars as pl

    from etl4all import parse

    out = Path(output) if output else None
    if out is not None:
        if out.suffix.lower() not in WRITERS:
            raise ConfigError(
                f"-o {out}: name a .parquet, .csv or .ndjson file (the suffix picks the format)"
            )
        if not out.parent.is_dir():
            raise ConfigError(f"-o {out}: the folder {out.parent} does not exist; create it first")
    results = [parse.parse(Path(f).read_bytes(), Path(f).name) for f in files]
    points = pl.concat([r.points for r in results])
    rejects = pl.concat([r.rejects for r in results])
    click.echo(f"points   {points.height}")
    click.echo(f"rejects  {rejects.height}")
    for reason, count in sorted(rejects.get_column("reason").value_counts().rows()):
        click.echo(f"  {reason:<18} {count}")
    if out is not None:
        write = WRITERS[out.suffix.lower()]
        rejects_path = out.with_name(out.stem + ".rejects" + out.suffix)
        getattr(points, write)(out)
        getattr(rejects, write)(rejects_path)
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

    settings = load_settings(pipeline, verbose, quiet, **flags)
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
    from etl4all.runners import check
    from etl4all.runners import regeocode as driver

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
@moves_data
def run_stage(stage: str, pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> None:
    """Run one services-mode STAGE worker: extract, transform or load.

    extract polls the source and publishes point batches; transform geocodes them and
    publishes address batches; load writes them to the warehouse. Run as many replicas of
    each as the load needs. SIGTERM/SIGINT finish the current batch and exit 0.
    """
    import threading

    from etl4all.runners import check
    from etl4all.runners.broker import run_stage as run_one
    from etl4all.stages.worker import install_signal_handlers

    settings = load_settings(pipeline, verbose, quiet, base="INFO", **flags)
    if settings.broker_url is None:
        raise ConfigError("run-stage needs a broker: --broker amqp://... or ETL4ALL_BROKER_URL")
    check.require(settings, check.STAGES[stage])  # before any message is taken
    stop = threading.Event()
    restore = install_signal_handlers(stop)
    try:
        run_one(stage, settings, stop)
    finally:
        restore()


@cli.command("check")
@click.argument("sources", nargs=-1)
@click.option(
    "--stage",
    type=click.Choice(["extract", "transform", "load"]),
    help="Check only what this run-stage worker uses (it needs a broker; extract a source).",
)
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
def check_command(
    sources: tuple[str, ...],
    stage: str | None,
    pipeline: str | None,
    verbose: int,
    quiet: bool,
    **flags: Any,
) -> None:
    """Check every backend with one cheap real request; print one line per backend.

    The checks every command runs at start-up: SOURCES (or --source) are listed, the state
    store and the lookup answer, the broker's queues are declared, the warehouse's tables
    exist, and an API geocoder answers one coordinate (one paid request). The source and the
    broker are checked when given. Exit 0 if all pass, 2 if any setting is wrong (bad key or
    password, unknown host, missing tables), else 1 (a server down).
    """
    from etl4all.runners import check

    settings = load_settings(pipeline, verbose, quiet, **flags)
    paths = list(sources) or ([settings.source_url] if settings.source_url else [])
    if stage is not None:
        if settings.broker_url is None:
            raise ConfigError("a run-stage worker needs a broker: --broker or ETL4ALL_BROKER_URL")
        roles: tuple[str, ...] = check.STAGES[stage]
    else:
        skip = {"source"} if not paths else set()
        skip |= {"broker"} if settings.broker_url is None else set()
        roles = tuple(role for role in check.RUN_BROKER if role not in skip)
    results = check.run_checks(settings, roles, sources=paths, quick=True)
    for result in results:
        click.echo(result.line())
    sys.exit(check.exit_code(results))


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
    """Show queue depths (incl. dead letters), warehouse rows, files done and cache size.

    Exits 3 when dead letters wait (for cron to alert); `etl4all dead-letters` handles them.
    """
    from etl4all.broker import queues
    from etl4all.runners import wiring

    settings = load_settings(pipeline, verbose, quiet, **flags)
    dead = 0
    if settings.broker_url:
        with wiring.open_broker(settings) as bus:
            names = (queues.POINTS, queues.ADDRESSES, queues.DEAD)
            depths = {name: bus.depth(queues.name(settings.queue_prefix, name)) for name in names}
        for name, depth in depths.items():
            click.echo(f"queue {queues.name(settings.queue_prefix, name):<24} {depth}")
        dead = depths[queues.DEAD]
    with wiring.open_warehouse(settings) as wh:
        click.echo(f"warehouse rows  {wh.count()}  {urls.redact(settings.warehouse_url)}")
    with wiring.open_state(settings) as store:
        click.echo(f"files done      {store.done_count()}")
        click.echo(f"cache entries   {store.cache_size()}")
    if settings.broker_url:
        hint = "; see `etl4all dead-letters list`" if dead else ""
        click.echo(f"dead letters    {dead}{hint}")
    if dead:
        sys.exit(EXIT_DEAD_LETTERS)


@cli.group("dead-letters")
def dead_letters() -> None:
    """List, replay or purge the dead letters of the services mode (PREFIX.dead).

    A batch is dead-lettered when a worker rejects it (the reason says why) or after too many
    failed deliveries (reason delivery_limit). Fix the cause, then replay it.
    """


DEAD_LETTER_OPTIONS = options.group(
    options.setting("broker_url", "--broker", help="RabbitMQ URL amqp://user:pass@host:5672/."),
    options.QUEUE_PREFIX,
    options.PIPELINE,
    options.VERBOSITY,
)


def open_dead_letters(pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> Broker:
    """The broker whose dead letters a ``dead-letters`` command works on."""
    from etl4all.runners import wiring

    settings = load_settings(pipeline, verbose, quiet, **flags)
    if settings.broker_url is None:
        raise ConfigError("dead-letters needs a broker: --broker amqp://... or ETL4ALL_BROKER_URL")
    return wiring.open_broker(settings)


def dead_letter_count(count: int) -> str:
    """``1 dead letter``, ``2 dead letters``."""
    return f"{count} dead letter{'' if count == 1 else 's'}"


def dead_letter_table(letters: list[dict[str, Any]], queue: str) -> str:
    """The dead letters as a table, one line each, the reason last and whole."""
    if not letters:
        return f"no dead letters in {queue}"
    columns = {"queue": "QUEUE", "source": "FILE", "batch_id": "BATCH", "rows": "ROWS"}
    columns |= {"deaths": "DEATHS", "reason": "REASON"}
    rows = [list(columns.values())] + [
        ["-" if letter[key] is None else " ".join(str(letter[key]).split()) for key in columns]
        for letter in letters
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]
    lines.append(f"{dead_letter_count(len(letters))} in {queue}")
    return "\n".join(lines)


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@DEAD_LETTER_OPTIONS
@handle_errors
def list_dead_letters(
    as_json: bool, pipeline: str | None, verbose: int, quiet: bool, **flags: Any
) -> None:
    """Show each dead letter: original queue, file, batch id, rows, times dead and reason.

    Reading leaves them in the queue, in their order. Secrets in the texts are redacted.
    """
    with open_dead_letters(pipeline, verbose, quiet, **flags) as bus:
        letters = [letter.shown() for letter in bus.dead_letters()]
        queue = bus.topology.dead
    if as_json:
        click.echo(json.dumps(letters, indent=2, ensure_ascii=False))
    else:
        click.echo(dead_letter_table(letters, queue))


@dead_letters.command("replay")
@click.option(
    "--batch",
    "batch_ids",
    multiple=True,
    metavar="ID",
    help="Only the dead letters of this batch id (repeatable).",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="FILE",
    help="Only the dead letters of this file, as `list` shows it (repeatable).",
)
@DEAD_LETTER_OPTIONS
@handle_errors
def replay_dead_letters(
    batch_ids: tuple[str, ...],
    sources: tuple[str, ...],
    pipeline: str | None,
    verbose: int,
    quiet: bool,
    **flags: Any,
) -> None:
    """Send dead letters back to the queue each came from (all, or those of --batch/--source).

    Each is published again (confirmed by the broker) before it leaves the dead-letter queue,
    without its death headers; exits 1 when some have no known queue (they stay).
    """
    from etl4all.broker import dead

    with open_dead_letters(pipeline, verbose, quiet, **flags) as bus:
        replayed = bus.replay(dead.matching(batch_ids, sources))
        queue = bus.topology.dead
    for target, count in sorted(replayed.sent.items()):
        click.echo(f"sent {dead_letter_count(count)} back to {target}")
    if not replayed.sent and not replayed.stranded:
        click.echo(f"no dead letter in {queue} matched")
    if replayed.stranded:
        click.echo(
            f"error: left {dead_letter_count(replayed.stranded)} in {queue}: no header names "
            "their queue (see `etl4all dead-letters list`)",
            err=True,
        )
        sys.exit(1)


@dead_letters.command("purge")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@DEAD_LETTER_OPTIONS
@handle_errors
def purge_dead_letters(
    yes: bool, pipeline: str | None, verbose: int, quiet: bool, **flags: Any
) -> None:
    """Delete every dead letter for good; asks first unless --yes."""
    with open_dead_letters(pipeline, verbose, quiet, **flags) as bus:
        queue = bus.topology.dead
        waiting = bus.depth(queue)
        if waiting and not yes:
            click.confirm(f"Delete {dead_letter_count(waiting)} of {queue} for good?", abort=True)
        purged = bus.purge(queue) if waiting else 0
    click.echo(f"purged {dead_letter_count(purged)} from {queue}")
