"""DuckDB: the file of a ``duckdb:///path`` URL, opening it, and its errors as etl4all's
(a refused value is a data error, a missing table or an unwritable folder a configuration
fault, a lock held by another process or a full disk an outage)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from etl4all import urls
from etl4all.errors import ConfigError, DataError, WarehouseError

_DATA_ERRORS = (
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.ConstraintException,
    duckdb.TypeMismatchException,
    duckdb.InvalidInputException,
)
_RETRYABLE_ERRORS = (
    duckdb.TransactionException,
    duckdb.IOException,
    duckdb.ConnectionException,
    duckdb.OutOfMemoryException,
    duckdb.InterruptException,
)


_REFUSED = ("Permission denied", "Read-only file system", "Operation not permitted")
"""What an ``IOException`` says when this user may not write the file or its folder: a
configuration fault (exit 2), which no retry fixes."""
_LOCKED = "Could not set lock"
"""What an ``IOException`` at opening says when another process holds the file: retryable."""
_DISK_FULL = "No space left"


@contextlib.contextmanager
def errors(what: str, url: str) -> Iterator[None]:
    """Translate duckdb errors raised by ``what`` on ``url`` into etl4all errors."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise DataError(f"{what} on {url}: the table refused a value: {exc}") from exc
    except duckdb.CatalogException as exc:
        raise ConfigError(f"{what} on {url}: {exc}; run `etl4all init-db` first") from exc
    except duckdb.IOException as exc:
        if any(text in str(exc) for text in _REFUSED):
            raise ConfigError(f"{what} on {url} failed: {exc}; {WRITABLE_HINT}") from exc
        raise WarehouseError(f"{what} on {url} failed: {exc}; retry later") from exc
    except _RETRYABLE_ERRORS as exc:
        raise WarehouseError(f"{what} on {url} failed: {exc}; retry later") from exc


WRITABLE_HINT = (
    "make the file and its folder writable for this user (DuckDB writes a .wal file beside "
    "it), or give --warehouse a duckdb:///path in a folder it can write to"
)


@contextlib.contextmanager
def opening(url: str, path: Path) -> Iterator[None]:
    """Translate the errors of opening the file at ``path``: a file another process holds
    or a full disk is an outage (retryable); any other failure to open it (not a DuckDB
    file, a folder, no permission) is a configuration fault that no retry fixes."""
    try:
        yield
    except duckdb.IOException as exc:
        text = str(exc)
        if _LOCKED in text or _DISK_FULL in text:
            raise WarehouseError(f"opening {url} failed: {exc}; retry later") from exc
        if path.is_file() and not any(refused in text for refused in _REFUSED):
            hint = (
                f"{path} is not a DuckDB database (or one of a newer DuckDB): give --warehouse "
                "the path of a DuckDB file, or of none (it is created), or move this one aside"
            )
        elif path.is_dir():
            hint = f"{path} is a folder: give --warehouse the path of a file in it"
        else:
            hint = WRITABLE_HINT
        raise ConfigError(f"cannot open the DuckDB warehouse {url}: {exc}; {hint}") from exc
    except (duckdb.SerializationException, duckdb.InvalidInputException) as exc:
        raise ConfigError(
            f"cannot open the DuckDB warehouse {url}: {exc}; is {path} a DuckDB file of this "
            "DuckDB version?"
        ) from exc


def path_of(url: str) -> Path:
    """The file of a ``duckdb:///path`` URL.

    Raises:
        ConfigError: not a duckdb URL, or no file in it.
    """
    if urls.scheme_of(url) != "duckdb":
        raise ConfigError(f"{urls.redact(url)} is not a duckdb:///path URL")
    return Path(urls.file_path(url))
