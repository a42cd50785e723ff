"""``etl4all dead-letters list|replay|purge``: see dead letters and send them back."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from etl4all import exits, options
from etl4all.commands.common import (
    handle_errors,
    load_settings,
    say,
)
from etl4all.errors import ConfigError

if TYPE_CHECKING:
    from etl4all.broker import BrokerBackend

log = logging.getLogger(__name__)


@click.group("dead-letters")
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


def open_dead_letters(
    pipeline: str | None, verbose: int, quiet: bool, **flags: Any
) -> BrokerBackend:
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
    without its death headers; exits 1 when some have no known queue (they stay), 2 when a
    --batch or --source matches no dead letter.
    """
    from etl4all.broker import dead

    chosen = dead.matching(batch_ids, sources)
    with open_dead_letters(pipeline, verbose, quiet, **flags) as bus:
        replayed = bus.replay(chosen)
        queue = bus.topology.dead
    for target, count in sorted(replayed.sent.items()):
        click.echo(f"sent {dead_letter_count(count)} back to {target}")
    if missing := chosen.unmatched():
        raise ConfigError(
            f"no dead letter with {' or '.join(missing)} in {queue} "
            "(`etl4all dead-letters list` shows them)"
        )
    if not replayed.sent and not replayed.stranded:
        click.echo(f"no dead letter in {queue} matched")
    if replayed.stranded:
        say(
            f"left {dead_letter_count(replayed.stranded)} in {queue}: no header names "
            "their queue (see `etl4all dead-letters list`)",
            exit_code=exits.TRANSIENT,
        )
        sys.exit(exits.TRANSIENT)


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
