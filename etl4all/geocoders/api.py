"""Base of the API geocoders (as geopy's ``Geocoder``), and the helpers their mappings share.

:class:`ApiGeocoder` checks the endpoint URL, asks the run's quota (:mod:`etl4all.quota`) for
its endpoint's limiter at the QPS cap, sets up the
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
from etl4all import quota as quotas
from etl4all.closing import Closing
from etl4all.errors import ConfigError
from etl4all.geocoders.base import Geocoded, ResultSink
from etl4all.geocoders.outcomes import Outcome
from etl4all.geocoders.runner import HttpRunner
from etl4all.quota.base import Limiter, Quota, Sleep
from etl4all.settings import DEFAULTS

DEFAULT_CONCURRENCY = 32
"""The fewest requests in flight when ``concurrency`` is not given."""
MAX_DEFAULT_CONCURRENCY = 256
"""The most requests in flight when ``concurrency`` is not given."""
ANSWER_SECONDS = 0.25
"""The answer time the default ``concurrency`` allows for at the full rate."""


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
    """Max requests per key, first try included (default ``Settings.max_attempts``)."""
    timeout: float
    """Seconds a request waits for each read of the answer (default
    ``Settings.request_timeout``)."""
    connect_timeout: float
    """Seconds to open a connection (default ``Settings.request_connect_timeout``)."""
    sleep: Sleep
    """Async sleep of the backoff waits (default ``asyncio.sleep``); tests inject a fast one."""
    quota: Quota
    """The run's quota, which hands out the endpoint's limiter (default: an in-process quota
    of the geocoder's own, closed with it)."""
    limiter: Limiter
    """The QPS cap itself, instead of the quota's (tests, benchmarks)."""


class ApiGeocoder(Closing):
    """A reverse geocoder that makes one HTTP GET per coordinate; a context manager.

    Args:
        endpoint: the provider's request URL without the per-coordinate query (from
            :meth:`check_url`).
        qps: requests per second (default: the provider's ``default_qps``).
        headers: sent with every request (e.g. User-Agent).
        secret: the API key, blanked out of every error text and failed row.
        options: see :class:`HttpOptions`; their ranges are checked by ``Settings``.

    Raises:
        ConfigError: a quota that cannot serve the endpoint (a daily cap without Redis).
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
        self.endpoint = endpoint
        self._own_quota: Quota | None = None
        limiter = options.get("limiter")
        if limiter is None:
            quota = options.get("quota")
            if quota is None:  # built on its own, not by a run
                quota = self._own_quota = quotas.from_url(None)
            limiter = quota.limiter(
                provider=self.name,
                endpoint=str(endpoint.with_query(None)),
                secret=secret,
                qps=rate,
            )
        self._runner = HttpRunner(
            name=self.name,
            limiter=limiter,
            concurrency=concurrency,
            max_attempts=options.get("max_attempts", DEFAULTS.max_attempts),
            timeout=options.get("timeout", DEFAULTS.request_timeout),
            connect_timeout=options.get("connect_timeout", DEFAULTS.request_connect_timeout),
            headers=headers,
            sleep=options.get("sleep"),
            scrub=[secret] if secret else [],
        )

    @classmethod
    def check_url(cls, value: str) -> yarl.URL:
        """``value``, once checked to be an absolute http(s) URL (:func:`etl4all.urls.parse`),
        as aiohttp's URL type, which builds the request URLs.

        Raises:
            ConfigError: it is not; the message names :attr:`url_option`.
        """
        parsed = urls.parse(str(value))
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(
                f"{cls.url_option} must be an absolute http(s) URL, got {parsed.shown}"
            )
        try:
            return yarl.URL(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cls.url_option} is not a URL: {parsed.shown}") from exc

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
        """Close the quota of its own, if any: each :meth:`reverse` opens and closes its own
        HTTP session, and a quota given is the run's to close."""
        if self._own_quota is not None:
            self._own_quota.close()

    def request_url(self, latitude: float, longitude: float) -> yarl.URL:
        """The provider's request URL for one coordinate (its parameters)."""
        raise NotImplementedError

    @staticmethod
    def interpret(
        http_status: int, body: bytes, *, retry_after: str | None = None, where: object
    ) -> Outcome:
        """The provider's status table: one response → a row, a ``Failed`` key or an error."""
        raise NotImplementedError


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
