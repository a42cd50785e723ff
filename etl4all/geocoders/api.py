"""Base of the API geocoders (as geopy's ``Geocoder``), and the helpers their mappings share.

:class:`ApiGeocoder` checks the endpoint URL, picks the QPS cap and its limiter, sets up the
:class:`~etl4all.geocoders.runner.HttpRunner` with the options of :class:`HttpOptions` and
keeps the API key out of every error text; a provider (``google.py``, ``nominatim.py``) keeps
only its request URL, its status table and its row mapping. Timeouts: ``connect_timeout`` to
connect, ``timeout`` for each wait for the answer, so a silent server is a retryable
``GeocodeTimeoutError``. See docs/geocoding.md (How requests are made).
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar, TypedDict, Unpack

import polars as pl
import yarl

from etl4all import frames, urls
from etl4all.closing import Closing
from etl4all.errors import ConfigError, MissingDependencyError
from etl4all.geocoders.base import Geocoded, ResultSink
from etl4all.geocoders.outcomes import Outcome
from etl4all.geocoders.ratelimit import Limiter, Sleep, shared_limiter
from etl4all.geocoders.runner import DEFAULT_CONNECT_TIMEOUT, HttpRunner

DEFAULT_CONCURRENCY = 32
"""The fewest requests in flight when ``concurrency`` is not given."""
MAX_DEFAULT_CONCURRENCY = 256
"""The most requests in flight when ``concurrency`` is not given."""
ANSWER_SECONDS = 0.25
"""The answer time the default ``concurrency`` allows for at the full rate."""
DEFAULT_MAX_ATTEMPTS = 5
"""Requests per key (first try included) when ``max_attempts`` is not given."""
DEFAULT_TIMEOUT = 10.0
"""Seconds a request waits for each read of the answer when ``timeout`` is not given."""


def concurrency_for(qps: float) -> int:
    """Requests in flight that reach ``qps`` when answers take :data:`ANSWER_SECONDS`, from
    :data:`DEFAULT_CONCURRENCY` to :data:`MAX_DEFAULT_CONCURRENCY`: a raised quota is
    reached without also raising ``--concurrency``."""
    wanted = math.ceil(qps * ANSWER_SECONDS)
    return max(DEFAULT_CONCURRENCY, min(MAX_DEFAULT_CONCURRENCY, wanted))


class HttpOptions(TypedDict, total=False):
    """The keyword options every API geocoder takes besides its own (all optional)."""

    concurrency: int | None
    """Max requests in flight (default, or None: :func:`concurrency_for` the rate)."""
    max_attempts: int
    """Max requests per key, first try included (default :data:`DEFAULT_MAX_ATTEMPTS`)."""
    timeout: float
    """Seconds a request waits for each read of the answer (default :data:`DEFAULT_TIMEOUT`)."""
    connect_timeout: float
    """Seconds to open a connection (default
    :data:`~etl4all.geocoders.runner.DEFAULT_CONNECT_TIMEOUT`)."""
    sleep: Sleep
    """Async sleep of the backoff waits (default ``asyncio.sleep``); tests inject a fast one."""
    limiter: Limiter
    """The QPS cap (default: :func:`pick_limiter`)."""
    state_url: str | None
    """The state store: with ``redis://`` the rate, its slow-downs and the daily cap are the
    fleet's."""
    max_calls_per_day: int | None
    """Request starts per UTC day for the fleet of this provider and key (Redis state only)."""


class ApiGeocoder(Closing):
    """A reverse geocoder that makes one HTTP GET per coordinate; a context manager.

    Args:
        endpoint: the provider's request URL without the per-coordinate query (from
            :meth:`check_url`).
        qps: requests per second (default: the provider's ``default_qps``).
        headers: sent with every request (e.g. User-Agent).
        secret: the API key, blanked out of every error text and failed row.
        options: see :class:`HttpOptions`.

    Raises:
        ConfigError: a non-positive ``qps``, ``concurrency``, ``max_attempts`` or ``timeout``.
    """

    name: ClassVar[str]
    paid: ClassVar[bool] = True
    default_qps: ClassVar[float]
    """Requests per second when ``qps`` is not given."""
    max_qps: ClassVar[float | None] = None
    """The provider's documented limit, if any: the start-up check warns (once) above it."""
    url_option: ClassVar[str]
    """The name of the endpoint option, for messages (``google_url``)."""

    def __init__(
        self,
        *,
        endpoint: yarl.URL,
        qps: float | None,
        headers: dict[str, str] | None = None,
        secret: str | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:
        rate = self.default_qps if qps is None else qps
        concurrency = options.get("concurrency")
        concurrency = concurrency_for(rate) if concurrency is None else concurrency
        max_attempts = options.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        connect_timeout = options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        for option, value in (
            ("qps", rate),
            ("concurrency", concurrency),
            ("max_attempts", max_attempts),
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
        ):
            if value <= 0:
                raise ConfigError(f"{self.name}: {option} must be positive, got {value}")
        self.endpoint = endpoint
        self._runner = HttpRunner(
            name=self.name,
            limiter=options.get("limiter")
            or pick_limiter(
                self.name,
                str(endpoint.with_query(None)),
                rate,
                secret=secret,
                state_url=options.get("state_url"),
                max_calls_per_day=options.get("max_calls_per_day"),
            ),
            concurrency=concurrency,
            max_attempts=max_attempts,
            timeout=timeout,
            connect_timeout=connect_timeout,
            headers=headers,
            sleep=options.get("sleep"),
            scrub=[secret] if secret else [],
        )

    @classmethod
    def check_url(cls, value: str) -> yarl.URL:
        """``value`` parsed, once checked to be an absolute http(s) URL.

        Raises:
            ConfigError: it is not; the message names :attr:`url_option`.
        """
        try:
            url = yarl.URL(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cls.url_option} is not a URL: {urls.redact(str(value))}") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"{cls.url_option} must be an absolute http(s) URL, got {urls.redact(value)}"
            )
        return url

    @property
    def qps(self) -> float:
        """The effective request rate cap."""
        return self._runner.limiter.qps

    @property
    def concurrency(self) -> int:
        """The effective number of requests in flight."""
        return self._runner.concurrency

    def __repr__(self) -> str:
        shown = urls.redact(str(self.endpoint))
        return f"{type(self).__name__}(url={shown!r}, runner={self._runner!r})"

    def reverse(self, keys: pl.DataFrame, on_results: ResultSink | None = None) -> Geocoded:
        """Geocode distinct ``keys`` (``KEYS_SCHEMA``): one request per key, plus retries.

        Args:
            on_results: given the answers as they arrive, at least 4 times a second.

        Raises:
            GeocodeUnavailableError: a coordinate still failed after its retries (retryable).
            GeocodeAuthError: the provider refused the key or blocked the client.
            GeocodeQuotaError: the daily quota is used up.
            GeocodeEndpointError: an HTTP 4xx that no retry can fix (wrong endpoint URL).
        """
        return self._runner.run(keys, self.request_url, self.interpret, on_results)

    def close(self) -> None:
        """Nothing to release: each :meth:`reverse` opens and closes its own HTTP session."""

    def request_url(self, latitude: float, longitude: float) -> yarl.URL:
        """The provider's request URL for one coordinate (its parameters)."""
        raise NotImplementedError

    @staticmethod
    def interpret(
        http_status: int, body: bytes, *, retry_after: str | None = None, where: object
    ) -> Outcome:
        """The provider's status table: one response → a row, a ``Failed`` key or an error."""
        raise NotImplementedError


def pick_limiter(
    name: str,
    endpoint: str,
    qps: float,
    *,
    secret: str | None,
    state_url: str | None,
    max_calls_per_day: int | None,
) -> Limiter:
    """The fleet's limiter in Redis when ``state_url`` is ``redis://``, else the process's.

    Raises:
        ConfigError: ``max_calls_per_day`` without a Redis state (it is counted there).
        MissingDependencyError: the Redis extra is not installed.
    """
    if state_url and urls.scheme_of(state_url) in ("redis", "rediss"):
        try:  # the Redis driver comes with the redis extra
            from etl4all.geocoders import fleet
        except ModuleNotFoundError as exc:
            raise MissingDependencyError(str(exc.name), "redis") from exc
        scope = fleet.fleet_scope(name, endpoint, secret)
        return fleet.fleet_limiter(state_url, scope, qps, max_calls_per_day)
    if max_calls_per_day is not None:
        raise ConfigError(
            "max_calls_per_day is counted in Redis across the fleet: it needs a redis:// state URL"
        )
    return shared_limiter(endpoint, qps)


def empty_row(status: str) -> dict[str, Any]:
    """A row with every address field null and ``geocode_status`` = ``status``."""
    return {**dict.fromkeys(frames.ADDRESS_FIELDS), "geocode_status": status}


def json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` parsed as a JSON object, or None (not JSON, or not an object)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def retry_after_seconds(value: str | None) -> float | None:
    """The ``Retry-After`` header in seconds (only the delta-seconds form), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
