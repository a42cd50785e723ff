"""PostgreSQL connections for the warehouse: the URL, connecting, error mapping.

:class:`Dsn` is the parsed ``postgresql://`` URL (see :mod:`etl4all.warehouse.postgres` for
its form and options); :func:`connect` opens a psycopg connection in UTC; :func:`errors` is
the one translation of psycopg's errors, by SQLSTATE class (connection failures carry none:
they are told apart by the server's message).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterator
from typing import Any

import psycopg

from etl4all import urls
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.timeouts import timed_out

log = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT = 10
"""Seconds libpq waits for the connection, TLS and login included (``connect_timeout``)."""
STATEMENT_TIMEOUT = 300.0
"""Seconds a statement may run (``statement_timeout``): long enough for a big batch's merge,
short enough that a stuck session fails the batch, which is retried, instead of hanging."""
LOCK_TIMEOUT = 50.0
"""Seconds a statement waits for a lock (``lock_timeout``; InnoDB's default wait): a loader
behind a transaction that never ends fails the batch instead of waiting for ever."""
_LIBPQ_OPTIONS = {"connect_timeout", "sslmode", "sslrootcert", "sslcert", "sslkey"}
"""Query options passed to libpq as they are (its defaults when absent, ``connect_timeout``
aside)."""
_SESSION_OPTIONS = {"statement_timeout": STATEMENT_TIMEOUT, "lock_timeout": LOCK_TIMEOUT}
"""etl4all's own query options, in seconds: session settings of every connection."""
_UNCHECKED = {"allow", "prefer", "require"}
"""libpq's TLS modes that do not verify the certificate: a warning names them."""
_DATABASE = re.compile(r"^[A-Za-z0-9_$-]{1,63}$")

_LOGIN = ("password authentication failed", "no password supplied", "role ")
_NO_DATABASE = "does not exist"
_TLS = ("SSL", "certificate")
"""What libpq's refusals of a TLS set-up say (no SSL on the server, a certificate that does
not verify, a CA file missing): the URL's ``ssl*`` options or the server are to be fixed."""
_HBA = "pg_hba.conf"
"""What the server's refusal by its ``pg_hba.conf`` says (e.g. a plain connection to a server
that demands TLS): retrying cannot help."""
_SETUP = {"42P01", "42703", "3D000", "3F000"}
"""No such table, column, database or schema: ``etl4all init-db`` makes them."""
_GRANTS = {"42501"}
_RETRYABLE = {"23505", "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"}
"""A key another transaction inserted first, serialization failures and deadlocks, a lock
or statement timeout, a server shutting down: a retry succeeds."""
_TIMEOUTS = {"57014": "statement_timeout", "55P03": "lock_timeout"}
"""A statement cancelled by its timeout, a lock not granted within its timeout (the server
says "statement timeout", "lock timeout"): the option."""
_CONNECT_TIMEOUT = "timeout expired"
"""What libpq says when ``connect_timeout`` ends an attempt (the server accepted and said
nothing, or never accepted)."""
_DATA_CLASSES = ("22", "23")
"""Data exceptions (a value out of range, too long, bad bytes) and integrity violations."""


@dataclasses.dataclass(frozen=True)
class Dsn:
    """Where the warehouse lives and how to reach it, from a ``postgresql://`` URL."""

    url: str
    """The URL, redacted: for messages."""
    database: str
    host: str
    port: int
    user: str
    password: str | None = dataclasses.field(repr=False)
    options: tuple[tuple[str, str], ...]
    """libpq options (``sslmode``…), ``connect_timeout`` always among them."""
    timeouts: tuple[tuple[str, float], ...] = tuple(_SESSION_OPTIONS.items())
    """The session's ``statement_timeout`` and ``lock_timeout``, in seconds."""

    @classmethod
    def parse(cls, url: str) -> Dsn:
        """The parts of ``url``.

        Raises:
            ConfigError: not a ``postgresql://`` URL, no host, no valid database name, or an
                unknown option.
        """
        parsed = urls.parse(url)
        shown = parsed.shown
        if parsed.scheme not in SCHEMES:
            raise ConfigError(f"{shown} is not a postgresql://user:password@host/db URL")
        urls.check(url)
        if not parsed.host:
            raise ConfigError(f"{shown} names no host: write postgresql://user@host/db")
        if not _DATABASE.match(parsed.database):
            raise ConfigError(f"{shown}: name a database (letters, digits, _, $ and -)")
        options = {k: v for k, v in parsed.options.items() if v}
        if unknown := set(options) - _LIBPQ_OPTIONS - set(_SESSION_OPTIONS):
            known = sorted(_LIBPQ_OPTIONS | set(_SESSION_OPTIONS))
            raise ConfigError(f"{shown}: unknown options {sorted(unknown)}; known {known}")
        timeouts = {
            name: _seconds(shown, name, options.pop(name, str(default)))
            for name, default in _SESSION_OPTIONS.items()
        }
        if not options.setdefault("connect_timeout", str(CONNECT_TIMEOUT)).isdigit():
            raise ConfigError(f"{shown}: connect_timeout must be whole seconds")
        if "sslrootcert" in options:  # a CA given: check the chain and the host name
            options.setdefault("sslmode", "verify-full")
        if options.get("sslmode") in _UNCHECKED:
            log.warning(
                "%s: sslmode=%s encrypts without checking the server's certificate; "
                "use sslmode=verify-full with sslrootcert=/path/ca.pem",
                shown,
                options["sslmode"],
            )
        return cls(
            url=shown,
            database=parsed.database,
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.user or "postgres",
            password=parsed.password,
            options=tuple(sorted(options.items())),
            timeouts=tuple(timeouts.items()),
        )

    def timeout(self, name: str) -> float:
        """The seconds of one of :attr:`timeouts`, or of ``connect_timeout``."""
        return float(dict(self.options).get(name) or dict(self.timeouts)[name])

    def on(self, database: str) -> Dsn:
        """This DSN on another database of the same server (``postgres``, to create one)."""
        return dataclasses.replace(self, database=database)


def connect(dsn: Dsn, *, autocommit: bool = False, read_only: bool = False) -> psycopg.Connection:
    """A new connection to ``dsn``'s database, its session in UTC (read-only if asked).

    Raises:
        ConfigError: bad credentials, or no such database (``missing_database`` tells).
        WarehouseError: the server cannot be reached.
    """
    settings = "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
    for name, seconds in dsn.timeouts:  # in ms, 0 (none) where the URL gives 0
        settings += f" -c {name}={round(seconds * 1000)}"
    params: dict[str, Any] = dict(dsn.options)
    if dsn.password is not None:
        params["password"] = dsn.password
    with errors("connecting", dsn):
        return psycopg.connect(
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            dbname=dsn.database,
            options=settings,
            autocommit=autocommit,
            application_name="etl4all",
            **params,
        )


def missing_database(exc: BaseException) -> bool:
    """Whether ``exc``, raised by :func:`connect`, says the database does not exist."""
    said = str(exc.__cause__ or exc)
    return 'database "' in said and _NO_DATABASE in said


@contextlib.contextmanager
def errors(what: str, dsn: Dsn) -> Iterator[None]:
    """Translate psycopg errors raised by ``what`` on ``dsn`` into etl4all errors."""
    try:
        yield
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        lines = (line.strip() for line in str(exc).splitlines())  # libpq's hints: a line each
        said = urls.redact(" ".join(line for line in lines if line)) or type(exc).__name__
        text = f"{what} on {dsn.url} failed: {said}"
        if state in _SETUP or (not state and missing_database(exc)):
            raise ConfigError(f"{text}; create them with `etl4all init-db`") from exc
        if not state and any(login in said for login in _LOGIN):
            raise ConfigError(f"{text}; check the user and password in the URL") from exc
        if not state and any(tls in said for tls in _TLS):
            raise ConfigError(f"{text}; check the URL's sslmode and sslrootcert") from exc
        if not state and _HBA in said:
            raise ConfigError(f"{text}; check the URL's sslmode, user and database") from exc
        if state in _GRANTS:
            raise ConfigError(f"{text}; check the user's grants on the server") from exc
        if state in _TIMEOUTS and _TIMEOUTS[state].replace("_", " ") in said:
            option = _TIMEOUTS[state]
            late = timed_out(dsn.host, dsn.port, "did not finish", dsn.timeout(option), option)
            raise WarehouseError(f"{what} on {dsn.url} failed: {late}; retry later") from exc
        if not state and _CONNECT_TIMEOUT in said:
            late = timed_out(
                dsn.host,
                dsn.port,
                "did not complete the connection",
                dsn.timeout("connect_timeout"),
                "connect_timeout",
            )
            raise WarehouseError(f"{what} on {dsn.url} failed: {late}; retry later") from exc
        if state in _RETRYABLE or state.startswith(("08", "53", "58")):
            raise WarehouseError(f"{text}; retry later") from exc
        if state.startswith(_DATA_CLASSES):
            raise DataError(f"{text}; the table refused a value; nothing was committed") from exc
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            raise WarehouseError(f"{text}; retry later") from exc
        raise
    except OSError as exc:
        raise WarehouseError(f"{what} on {dsn.url} failed: {exc}; retry later") from exc


def _seconds(shown: str, name: str, value: str) -> float:
    """The seconds of option ``name`` (0: no limit).

    Raises:
        ConfigError: not a number of seconds, or negative.
    """
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigError(f"{shown}: {name} must be seconds (0: no limit), got {value!r}")
    return seconds
