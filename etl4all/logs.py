"""Logging set-up, called once by the command line."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from etl4all import urls

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


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
        return True


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


def configure_logging(level: str | int = "INFO") -> None:
    """Log ``key=value`` lines with a timestamp to stderr at ``level``."""
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("pika", "asyncio", "urllib3", "pyftpdlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # pika logs every failed connection attempt with a traceback; etl4all reports the same
    # error once, with the host and the cause (debug shows pika's own lines)
    if root.level > logging.DEBUG:
        logging.getLogger("pika").setLevel(logging.CRITICAL)
