"""``etl4all run-stage``, ``check``, ``init-db`` and ``status``: services mode and its
backends."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from etl4all import exits, metrics, options, urls
from etl4all.commands.common import (
    handle_errors,
    load_settings,
    moves_data,
    say,
)
from etl4all.errors import ConfigError

log = logging.getLogger(__name__)


@click.command("run-stage")
@click.argument("stage", type=click.Choice(["extract", "transform", "load"]))
@options.WORKER
@options.ACCEPT_SHRINK
@handle_errors
@moves_data
def run_stage(stage: str, pipeline: str | None, verbose: int, quiet: bool, **flags: Any) -> None:
    """Run one services-mode STAGE worker: extract, transform or load.

    extract polls the source and publishes point batches; transform geocodes them and
    publishes address batches; load writes them to the warehouse. Run as many replicas of
    each as the load needs. SIGTERM/SIGINT finish the current batch and exit 0. An extractor
    holds a file that shrank to a prefix of the version loaded (a WARNING; with --once it
    exits 3) unless --accept-shrink names it.
    """
    import threading

    from etl4all.operations import check
    from etl4all.runners.broker import run_stage as run_one
    from etl4all.stages.worker import install_signal_handlers

    settings = load_settings(pipeline, verbose, quiet, base="INFO", stage=stage, **flags)
    if settings.broker_url is None:
        raise ConfigError("run-stage needs a broker: --broker amqp://... or ETL4ALL_BROKER_URL")
    check.require(settings, check.stage_roles(stage, settings))  # before any message is taken
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port, settings.metrics_host, settings.stall_seconds)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    stop = threading.Event()
    restore = install_signal_handlers(stop)
    try:
        held = run_one(stage, settings, stop)
    finally:
        restore()
    for file in held:
        click.echo(f"held: {file}", err=True)
    if held and settings.once:
        sys.exit(exits.ATTENTION)


@click.command("check")
@click.argument("sources", nargs=-1)
@click.option(
    "--stage",
    type=click.Choice(["extract", "transform", "load"]),
    help="Check only what this run-stage worker uses (it needs a broker; extract a source).",
)
@options.WORKER
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
    from etl4all.operations import check

    settings = load_settings(pipeline, verbose, quiet, **flags)
    paths = list(sources) or ([settings.source_url] if settings.source_url else [])
    if stage is not None:
        if settings.broker_url is None:
            raise ConfigError("a run-stage worker needs a broker: --broker or ETL4ALL_BROKER_URL")
        roles: tuple[str, ...] = check.stage_roles(stage, settings)
    else:
        skip = {"source"} if not paths else set()
        skip |= {"broker"} if settings.broker_url is None else set()
        roles = tuple(role for role in check.RUN_BROKER if role not in skip)
    results = check.run_checks(settings, roles, sources=paths, quick=True, paid=True)
    for result in results:
        click.echo(result.line())
    sys.exit(check.exit_code(results))


@click.command("init-db")
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


@click.command()
@options.BROKER
@options.QUEUE_PREFIX
@options.STATE
@options.WAREHOUSE
@click.option(
    "--json", "as_json", is_flag=True, help="Print the status as one JSON object instead of tables."
)
@options.PIPELINE
@options.VERBOSITY
@handle_errors
def status(pipeline: str | None, verbose: int, quiet: bool, as_json: bool, **flags: Any) -> None:
    """Show the queues (ready, consumers, dead letters), files done and claimed (with the
    worker holding each), cache entries, warehouse rows and the last load time.

    A part that cannot be reached is shown as unreachable, with the reason. Exit 3 when dead
    letters wait (for cron to alert; `etl4all dead-letters` handles them), else 1 when a part
    is unreachable, else 0.
    """
    import json

    from rich.console import Console

    from etl4all.operations import status as report

    settings = load_settings(pipeline, verbose, quiet, **flags)
    found = report.gather(settings)
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        report.render(found, Console(soft_wrap=True))
    dead = report.dead_letters(found)
    if dead:
        say(
            f"{dead} dead letters wait; see `etl4all dead-letters list`",
            label="",
            level=logging.WARNING,
            exit_code=exits.ATTENTION,
        )
        sys.exit(exits.ATTENTION)
    if reasons := report.unreachable(found):
        for reason in reasons:
            say(reason, exit_code=exits.TRANSIENT)
        sys.exit(exits.TRANSIENT)
