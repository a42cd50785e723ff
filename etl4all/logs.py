"""Logging set-up, called once by the command line: text lines or JSON objects on stderr.

A stage passes its batch's facts with ``extra=`` (``stage``, ``file``, ``batch``, ``rows``,
``seconds``): the JSON format gives them as fields, the text format has them in the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from etl4all import urls

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FIELDS = ("stage", "file", "batch", "rows", "seconds", "exit_code")
"""Fields of a JSON line taken from the record's ``extra=`` when given."""
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class RedactingFilter(logging.Filter):
    """Last line of defence: no password or ``key=`` value reaches a log handler, neither in
    the message nor in the traceback of a record logged with ``exc_info`` (drivers' messages)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = urls.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # formatted once, then reused by Formatter
            record.exc_text = urls.redact(_TRACEBACKS.formatException(record.exc_info))
        for name, value in vars(record).items():  # the ``extra=`` fields
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, urls.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    :data:`FIELDS` given, and the traceback as ``exception``."""

    def __init__(self, stage: str | None = None) -> None:
        super().__init__()
        self._stage = stage

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "stage": self._stage,
        }
        entry.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        entry["message"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps({k: v for k, v in entry.items() if v is not None}, default=str)


_TRACEBACKS = logging.Formatter()


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so a progress display that
    redirects it (rich) prints log lines above its bar instead of through it."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def json_line(message: str, level: int = logging.ERROR, **fields: Any) -> str | None:
    """``message`` as the JSON log handler writes a record (``fields`` among :data:`FIELDS`),
    or None when the log lines are text: a command's last lines (its error, what it left
    for later) then match the lines before them, for a log shipper."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            text = urls.redact(message)
            record = logging.LogRecord("etl4all", level, __file__, 0, text, None, None)
            record.__dict__.update(fields)
            return handler.formatter.format(record)
    return None


def configure_logging(
    level: str | int = "INFO", log_format: str = "text", stage: str | None = None
) -> None:
    """Log to stderr at ``level``: ``key=value`` lines with a timestamp (``text``) or one JSON
    object per line (``json``; ``stage`` is the stage of records that name none)."""
    handler = StderrHandler()
    handler.setFormatter(
        JsonFormatter(stage) if log_format == "json" else logging.Formatter(FORMAT)
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("pika", "asyncio", "urllib3", "pyftpdlib", "asyncssh"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # pika logs every failed connection attempt with a traceback; etl4all reports the same
    # error once, with the host and the cause (debug shows pika's own lines)
    if root.level > logging.DEBUG:
        logging.getLogger("pika").setLevel(logging.CRITICAL)
