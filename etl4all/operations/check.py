"""Start-up checks: one cheap, real request per backend, before any work is taken.

Every command checks the backends it uses (:data:`RUN`, :data:`RUN_BROKER`, :data:`STAGES`)
before it claims a file or takes a message, and ``etl4all check`` runs the same checks and
prints one line per backend. A check opens its backend as the command will
(:mod:`etl4all.runners.wiring`), creates no file and never pays (only ``etl4all check``
geocodes :data:`CHECK_POINT`). A ``ConfigError`` is exit 2, any other ``Etl4allError`` exit 1.
What each check does: docs/commands.md (etl4all check).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from etl4all import urls
from etl4all.errors import (
    BrokerError,
    ConfigError,
    Etl4allError,
    GeocodeUnavailableError,
    SourceError,
    StoreError,
    WarehouseError,
)
from etl4all.geocoders.base import KEYS_SCHEMA, Geocoder
from etl4all.runners import wiring
from etl4all.settings import Settings

log = logging.getLogger(__name__)

RUN = ("source", "state", "warehouse", "lookup", "geocoder")
"""The roles ``etl4all run`` checks (the paid geocoder last: nothing is paid for if another
check fails)."""
RUN_BROKER = ("source", "state", "broker", "warehouse", "lookup", "geocoder")
"""The roles ``etl4all run --broker`` checks."""
STAGES = {
    "extract": ("source", "state", "broker"),
    "transform": ("state", "broker", "geocoder"),
    "load": ("broker", "warehouse", "lookup"),
}
"""The roles each ``etl4all run-stage`` worker checks (see :func:`stage_roles`)."""


def stage_roles(stage: str, settings: Settings) -> tuple[str, ...]:
    """The roles a ``run-stage`` worker of ``stage`` checks: :data:`STAGES`, and the warehouse
    for a transformer with a paid geocoder (it reads the answers kept there before it pays
    for one again)."""
    if stage == "transform" and wiring.geocoder_is_paid(settings):
        return ("state", "broker", "warehouse", "geocoder")
    return STAGES[stage]


CHECK_POINT = (-30.0346, -51.2177)
"""The coordinate the geocoder check asks for (central Porto Alegre: an address exists)."""

_UNKNOWN_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_BUCKET_SCHEMES = ("s3",)
"""Schemes whose URL names a bucket where a host would be (``s3://bucket/prefix``): the
store's address comes from elsewhere (``AWS_ENDPOINT_URL``), so nothing is resolved."""
_OUTAGE: dict[str, type[Etl4allError]] = {
    "source": SourceError,
    "state": StoreError,
    "lookup": StoreError,
    "broker": BrokerError,
    "warehouse": WarehouseError,
    "geocoder": GeocodeUnavailableError,
}
"""The retryable error of each role, for a name server that fails for a while."""


@dataclasses.dataclass(frozen=True)
class Result:
    """The verdict of one backend's check."""

    role: str
    """``source``, ``state``, ``broker``, ``warehouse``, ``lookup`` or ``geocoder``."""
    target: str
    """What was checked: a redacted URL, or a geocoder's name and endpoint."""
    detail: str
    """What the check found (``12 files``) or, when it failed, the error's message."""
    error: Etl4allError | None = None
    """The failure, if any."""
    calls: int = 0
    """Paid API requests the check made."""

    @property
    def ok(self) -> bool:
        """Whether the backend passed."""
        return self.error is None

    @property
    def config_fault(self) -> bool:
        """Whether it failed on a configuration fault (exit code 2)."""
        return isinstance(self.error, ConfigError)

    def line(self) -> str:
        """``ok   geocoder google https://… (1 request)`` or ``FAIL warehouse mysql://…: why``."""
        if self.ok:
            return f"ok   {self.role} {self.target} ({self.detail})"
        why = self.detail.removeprefix(self.target + ": ").replace(f" on {self.target} ", " ")
        return f"FAIL {self.role} {self.target}: {why}"


def run_checks(
    settings: Settings,
    roles: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    stop_at_failure: bool = False,
    quick: bool = False,
    paid: bool = False,
) -> list[Result]:
    """Check the backends of ``roles``, in that order; every failure becomes a Result.

    Args:
        sources: the sources to list for ``source`` (default: ``settings.source_url``).
        stop_at_failure: return at the first failure (a start-up check).
        quick: a broker that does not answer fails at once instead of after the
            reconnection backoff (unless its URL sets ``reconnect_attempts``).
        paid: an API geocoder answers one real request (``etl4all check``).
    """
    if sources is None:
        sources = [settings.source_url] if settings.source_url else []
    todo: list[tuple[str, str, Callable[[], tuple[str, int]]]] = []
    for role in roles:
        if role == "source":
            todo += [("source", urls.redact(url), _source(settings, url)) for url in sources]
            if not sources:
                todo.append(("source", "(none)", _no_source))
        elif role == "broker":
            todo.append((role, _target(settings, role), _broker(settings, quick=quick)))
        elif role == "geocoder":
            todo.append((role, _target(settings, role), _geocoder(settings, paid=paid)))
        else:
            todo.append((role, _target(settings, role), _CHECKS[role](settings)))
    results = []
    for role, target, check in todo:
        try:
            detail, calls = check()
        except Etl4allError as exc:
            results.append(Result(role, target, urls.redact(str(exc)), exc))
            if stop_at_failure:
                break
        else:
            results.append(Result(role, target, detail, calls=calls))
    return results


def require(
    settings: Settings, roles: Sequence[str], *, sources: Sequence[str] | None = None
) -> None:
    """The start-up check of a command: raise the first failure, else log what was found.

    Raises:
        ConfigError: a configuration fault (exit code 2).
        Etl4allError: a backend is down or refused for another reason (exit code 1).
    """
    results = run_checks(settings, roles, sources=sources, stop_at_failure=True)
    for result in results:
        if result.error is not None:
            raise result.error
        log.info("check %s", result.line())


def exit_code(results: Sequence[Result]) -> int:
    """0 when every check passed, 2 if any failed on a configuration fault, else 1."""
    if any(result.config_fault for result in results):
        return 2
    return 0 if all(result.ok for result in results) else 1


# -- the checks: each returns (what it found, paid requests) ------------------------------


def _source(settings: Settings, url: str) -> Callable[[], tuple[str, int]]:
    def check() -> tuple[str, int]:
        _resolve("source", url)
        with wiring.open_source(url, settings) as source:
            files = len(source.list_files())
        return f"{files} file{'s' if files != 1 else ''}", 0

    return check


def _no_source() -> tuple[str, int]:
    raise ConfigError("no source: give one (--source) or set ETL4ALL_SOURCE_URL")


def _state(settings: Settings) -> Callable[[], tuple[str, int]]:
    def check() -> tuple[str, int]:
        _resolve("state", settings.state_url)
        if (to_come := _file_to_come(settings.state_url, "--state")) is not None:
            return to_come, 0
        with wiring.open_state(settings) as store:
            done = store.done_count()
        return f"{done} files done", 0

    return check


def _broker(settings: Settings, *, quick: bool) -> Callable[[], tuple[str, int]]:
    def check() -> tuple[str, int]:
        if settings.broker_url:
            _resolve("broker", settings.broker_url)
        with wiring.open_broker(settings, quick=quick) as bus:
            points = bus.topology.points
            waiting = bus.depth(points)
        return f"queues declared, {waiting} batches waiting in {points}", 0

    return check


def _warehouse(settings: Settings) -> Callable[[], tuple[str, int]]:
    def check() -> tuple[str, int]:
        _resolve("warehouse", settings.warehouse_url)
        if (to_come := _file_to_come(settings.warehouse_url, "--warehouse")) is not None:
            return to_come, 0
        with wiring.open_warehouse(settings) as wh:
            missing = wh.missing_schema()
        if missing:
            raise ConfigError(
                f"{urls.redact(settings.warehouse_url)}: tables or columns missing "
                f"({', '.join(missing)}); create or upgrade them with `etl4all init-db`"
            )
        return "tables present", 0

    return check


def _lookup(settings: Settings) -> Callable[[], tuple[str, int]]:
    def check() -> tuple[str, int]:
        if settings.lookup_url is None:
            return "no lookup URL: the warehouse's unique key serves", 0
        _resolve("lookup", settings.lookup_url)
        # only the warehouse lookup uses the warehouse, and it is not built here
        with wiring.open_lookup(settings, None) as keys:  # type: ignore[arg-type]
            keys.ping()
        return "ping answered", 0

    return check


def _geocoder(settings: Settings, *, paid: bool) -> Callable[[], tuple[str, int]]:
    def check() -> tuple[str, int]:
        with (
            wiring.open_quota(settings) as quota,
            wiring.open_geocoder(settings, quota) as geocoder,
        ):
            if not geocoder.paid:
                return "no network: nothing to check", 0
            _warn_above_limit(geocoder, settings.qps)
            endpoint = getattr(geocoder, "endpoint", None)
            if endpoint is not None:
                _resolve("geocoder", str(endpoint))
            if not paid:
                return "key proven by the first request of the work: no request made", 0
            if settings.max_calls == 0:
                return "--max-calls 0: no request made", 0
            lat, lon = CHECK_POINT
            answer = geocoder.reverse(
                pl.DataFrame({"latitude": [lat], "longitude": [lon]}, schema=KEYS_SCHEMA)
            )
        calls = answer.calls
        if answer.failed.height:  # INVALID_REQUEST for a valid coordinate: not our request
            reason, text = answer.failed.row(0)[2:]
            raise ConfigError(
                f"{settings.geocoder} refused a valid coordinate ({reason}: {text}); "
                "is its URL right?"
            )
        return f"{calls} request{'s' if calls != 1 else ''}", calls

    return check


def _warn_above_limit(geocoder: Geocoder, qps: float | None) -> None:
    """Warn when ``qps`` is above the provider's documented default limit (a raised quota
    may allow it): here, once per start (the command builds its geocoder again for the work)."""
    limit = getattr(geocoder, "max_qps", None)
    rate = qps if qps is not None else getattr(geocoder, "default_qps", None)
    if limit is not None and rate is not None and rate > limit:
        log.warning(
            "qps %s is above %s's default limit of %s per second: right for a key whose quota "
            "was raised; otherwise the API answers OVER_QUERY_LIMIT and the run slows down to "
            "what the key allows (its summary names the --qps to set)",
            rate,
            geocoder.name,
            limit,
        )


_CHECKS: dict[str, Callable[[Settings], Callable[[], tuple[str, int]]]] = {
    "state": _state,
    "warehouse": _warehouse,
    "lookup": _lookup,
}


def _target(settings: Settings, role: str) -> str:
    """What the check of ``role`` looks at, for its line (secrets redacted)."""
    if role == "geocoder":
        url = {"google": settings.google_url, "nominatim": settings.nominatim_url}
        return f"{settings.geocoder} {urls.redact(url.get(settings.geocoder, ''))}".rstrip()
    url_of = {
        "state": settings.state_url,
        "broker": settings.broker_url or "memory://",
        "warehouse": settings.warehouse_url,
        "lookup": settings.lookup_url or "warehouse",
    }
    return urls.redact(url_of[role])


def _resolve(role: str, url: str) -> None:
    """Resolve the one host of ``url`` (if it names one), once the URL is known to split
    where it should.

    Raises:
        ConfigError: the URL splits in the wrong place (an unencoded ``/ ? #`` in its
            password), or the name server does not know the host.
        Etl4allError: the role's retryable error, when the name server fails for a while.
    """
    urls.check(url)  # "user:pa/ss@host" would look up the host "user"
    try:
        parsed = urls.parse(url)
    except ConfigError:  # a malformed URL: its backend says what is wrong with it
        return
    host = parsed.host
    if not host or "," in parsed.netloc.rpartition("@")[2]:  # several (a MongoDB replica set)
        return
    if parsed.scheme in _BUCKET_SCHEMES:
        return
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        if exc.errno in _UNKNOWN_HOST:
            raise ConfigError(f"unknown host {host!r} in {urls.redact(url)}") from exc
        raise _OUTAGE[role](f"cannot resolve {host!r} in {urls.redact(url)}: {exc}") from exc


def _file_to_come(url: str, option: str) -> str | None:
    """What the check of a ``sqlite://`` or ``duckdb://`` URL whose file does not exist yet
    finds, without opening it (that would create it, and a check creates no file); None when
    the URL names no such file (the backend is then opened and checked as usual).

    Raises:
        ConfigError: the file could not be created: the nearest folder of its path that
            exists is not a folder this user can write to.
    """
    if urls.scheme_of(url) not in urls.FILE_SCHEMES:
        return None
    name = urls.file_path(url)
    if name in (":memory:", "") or name.startswith("file:"):
        return None  # the backend says what is wrong with it
    path = Path(os.path.abspath(name))
    if path.exists():
        return None
    existing = next(folder for folder in path.parents if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{urls.redact(url)}: {path} cannot be created: {existing} is not a folder this user "
            f"can write to; give {option} a path where it can"
        )
    return f"no file yet: the first run creates {path}"
