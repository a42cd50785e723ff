"""What every command shares: error handling, exit codes, settings and logging."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from etl4all import exits, logs, urls
from etl4all.errors import ConfigError, Etl4allError
from etl4all.logs import configure_logging
from etl4all.settings import LOG_LEVELS, Settings, requested_log_format

log = logging.getLogger(__name__)


RETRY_HINT = (
    "; a temporary fault: run the same command again once the service is back (nothing is "
    "lost: a failed batch is not committed, finished files are skipped, paid answers are cached)"
)


def moves_data(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command that processes data: a temporary fault's message says to rerun it."""
    func.moves_data = True  # type: ignore[attr-defined]
    return func


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map exceptions to exit codes (:mod:`etl4all.exits`) with a one-line reason on stderr."""
    hint_on_retryable = getattr(func, "moves_data", False)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            say(str(exc), exit_code=exits.CONFIG)
            sys.exit(exits.CONFIG)
        except Etl4allError as exc:
            hint = RETRY_HINT if exc.retryable and hint_on_retryable else ""
            say(f"{exc}{hint}", exit_code=exits.TRANSIENT)
            sys.exit(exits.TRANSIENT)
        except KeyboardInterrupt:
            say("interrupted", label="", exit_code=exits.INTERRUPTED)
            sys.exit(exits.INTERRUPTED)

    return wrapper


def say(
    message: str,
    *,
    label: str = "error",
    level: int = logging.ERROR,
    exit_code: int | None = None,
) -> None:
    """Write ``label: message`` on stderr (redacted), or a JSON object like the log lines'
    when they are JSON (``--log-format json``), with the ``exit_code`` the command ends with
    (the level stands for an ``error`` or ``warning`` label there, other labels stay)."""
    labelled = f"{label}: {message}" if label else message
    shown = message if label in ("error", "warning") else labelled
    line = logs.json_line(shown, level, exit_code=exit_code)
    click.echo(line if line is not None else urls.redact(labelled), err=True)


LEVELS = tuple(reversed(LOG_LEVELS))


def load_settings(
    pipeline: str | None,
    verbose: int,
    quiet: bool,
    *,
    base: str = "WARNING",
    stage: str | None = None,
    **flags: Any,
) -> Settings:
    """Settings from the pipeline file, the environment and ``flags``; sets up logging.

    The log level is ``log_level`` if set, else ``base`` (WARNING; INFO for workers); each
    ``-v`` makes it one step more verbose, ``-q`` shows warnings and errors only. ``stage``:
    the stage of a worker's JSON log lines.
    """
    try:
        settings = Settings.load(pipeline, overrides=flags)
    except ConfigError:
        # the error line is written in the format asked for, when that much can be told
        configure_logging("WARNING", requested_log_format(pipeline, flags.get("log_format")), stage)
        raise
    level = (settings.log_level or base).upper()
    if quiet:
        level = "WARNING"
    elif verbose:
        start = LEVELS.index(level)  # a valid level: Settings checked it
        level = LEVELS[min(start + verbose, len(LEVELS) - 1)]
    configure_logging(level, settings.log_format, stage)
    return settings
