"""``google``: the Google Geocoding API (legacy web service), reverse geocoding.

URL form (one request per coordinate)::

    GET {google_url}?latlng=LAT,LNG&key=KEY&language=LANG[&result_type=T1|T2][&location_type=L]

Settings read: ``google_key`` (``GOOGLE_MAPS_API_KEY`` or ``--google-key``; required, never
logged), ``google_url`` (default ``https://maps.googleapis.com/maps/api/geocode/json``; a URL
with no path, like ``http://127.0.0.1:8080``, gets Google's path ``/maps/api/geocode/json``;
override for proxies and tests), ``language`` (default ``pt-BR``), ``result_type`` and
``location_type`` (filters applied by Google after the search), ``qps`` (default 40: below
Google's 3,000 queries per minute), ``concurrency``, ``max_attempts``, ``request_timeout``.
Driver: aiohttp (rate limit, concurrency and retries in :mod:`etl4all.geocoders.ratelimit`).

Status handling (:func:`interpret`, the one place that maps responses to outcomes):

=====================================  ==============================================
``OK``                                 address row (:func:`google_row`)
``ZERO_RESULTS``                       row with null address, status ZERO_RESULTS
``INVALID_REQUEST``                    failed row ``invalid_request``; the batch goes on
``OVER_QUERY_LIMIT``, HTTP 429         RateLimitedError (retried with backoff)
``OVER_QUERY_LIMIT`` (daily quota)     GeocodeQuotaError: the batch stops
``OVER_DAILY_LIMIT``                   GeocodeQuotaError: the batch stops
``REQUEST_DENIED``, HTTP 401/403       GeocodeAuthError: the batch stops
``UNKNOWN_ERROR``, 5xx, non-JSON body  GeocodeUnavailableError (retried with backoff)
other HTTP 4xx (wrong URL)             GeocodeError: the batch stops
=====================================  ==============================================
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import polars as pl

from etl4all import urls
from etl4all.closing import Closing
from etl4all.errors import (
    ConfigError,
    GeocodeAuthError,
    GeocodeError,
    GeocodeQuotaError,
    GeocodeUnavailableError,
    RateLimitedError,
)
from etl4all.geocoders.base import Geocoded
from etl4all.geocoders.http import (
    Failed,
    Outcome,
    degrees,
    empty_row,
    http_url,
    retry_after_seconds,
    transport_errors,
)
from etl4all.geocoders.ratelimit import HttpRunner, RateLimiter, shared_limiter
from etl4all.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_QPS = 40.0
"""Requests per second when ``settings.qps`` is not set (Google allows 3,000 per minute)."""
GOOGLE_MAX_QPS = 50.0
"""Google's documented limit; a higher ``qps`` only buys OVER_QUERY_LIMIT answers."""

_PRECISE = ("street_address", "premise", "subpremise")
_DAILY = re.compile(r"daily|per day|per-day", re.I)


GEOCODE_PATH = "/maps/api/geocode/json"
"""The endpoint's path, appended to a ``google_url`` given without one."""


class GoogleGeocoder(Closing):
    """Reverse geocoder backed by the Google Geocoding API; a context manager.

    Args:
        settings: see the module docstring for the fields read.
        sleep: async sleep used for backoff waits (tests inject a fast one).
        limiter: QPS cap; default the process-wide one for ``google_url`` at ``qps``.

    Raises:
        ConfigError: no API key, or a ``google_url`` that is not an http(s) URL.
    """

    name = "google"
    paid = True

    def __init__(
        self,
        *,
        settings: Settings,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        key = (settings.google_key or "").strip()
        if not key:
            raise ConfigError(
                "the google geocoder needs an API key: set GOOGLE_MAPS_API_KEY "
                "or pass --google-key (or choose --geocoder offline or nominatim)"
            )
        self._url = http_url(settings.google_url, "google_url")
        if self._url.path in ("", "/"):  # a bare base URL: Google's own path under it
            self._url = self._url.with_path(GEOCODE_PATH)
        self._key = key
        self._params = {"language": settings.language}
        if settings.result_type:
            self._params["result_type"] = settings.result_type
        if settings.location_type:
            self._params["location_type"] = settings.location_type
        qps = settings.qps or DEFAULT_QPS
        if qps > GOOGLE_MAX_QPS:
            log.warning("qps %s is above Google's limit of %s per second", qps, GOOGLE_MAX_QPS)
        endpoint = str(self._url.with_query(None))
        self._runner = HttpRunner(
            name=self.name,
            limiter=limiter or shared_limiter(endpoint, qps),
            concurrency=settings.concurrency,
            max_attempts=settings.max_attempts,
            timeout=settings.request_timeout,
            scrub=[key],
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"GoogleGeocoder(url={urls.redact(str(self._url))!r}, runner={self._runner!r})"

    def reverse(self, keys: pl.DataFrame) -> Geocoded:
        """Geocode distinct ``keys`` (``KEYS_SCHEMA``): one request per key, plus retries.

        Raises:
            GeocodeAuthError: REQUEST_DENIED (bad key, API not enabled, key restrictions).
            GeocodeQuotaError: OVER_DAILY_LIMIT or the daily quota is used up.
            GeocodeError: an HTTP 4xx that no retry can fix (wrong ``google_url``).
        """
        return self._runner.run(keys, self._request)

    def close(self) -> None:
        """Nothing to release: each :meth:`reverse` opens and closes its own HTTP session."""

    async def _request(
        self, session: aiohttp.ClientSession, latitude: float, longitude: float
    ) -> Outcome:
        params = {"latlng": f"{degrees(latitude)},{degrees(longitude)}", "key": self._key}
        url = self._url.update_query({**params, **self._params})
        shown = urls.redact(str(url))
        log.debug("google GET %s", shown)
        with transport_errors(shown):
            async with session.get(url) as response:
                body = await response.read()
        return interpret(
            response.status, body, retry_after=response.headers.get("Retry-After"), where=shown
        )


def interpret(
    http_status: int, body: bytes, *, retry_after: str | None = None, where: str = "google"
) -> Outcome:
    """Map one Google response to a row, a :class:`Failed` key, or an exception.

    Args:
        http_status: the HTTP status code.
        body: the raw response body.
        retry_after: the ``Retry-After`` header, if any.
        where: the redacted request URL, for messages.

    Raises:
        RateLimitedError, GeocodeUnavailableError: retryable.
        GeocodeAuthError, GeocodeQuotaError, GeocodeError: the batch must stop.
    """
    data = _json_object(body)
    status = str(data.get("status") or "") if data is not None else ""
    message = str(data.get("error_message") or "") if data is not None else ""
    said = f"{status}: {message}" if message else status

    if status == "OVER_DAILY_LIMIT" or (status == "OVER_QUERY_LIMIT" and _DAILY.search(message)):
        raise GeocodeQuotaError(
            f"Google answered {said} ({where}). The key's daily quota is used up, billing "
            "is not enabled or the key is invalid: check the project in Google Cloud Console "
            "(billing, quotas); daily quotas reset at midnight Pacific time."
        )
    if http_status == 429 or status == "OVER_QUERY_LIMIT":
        raise RateLimitedError(
            f"Google answered {said or f'HTTP {http_status}'} ({where}): over the rate limit",
            retry_after=retry_after_seconds(retry_after),
        )
    if status == "REQUEST_DENIED" or (not status and http_status in (401, 403)):
        raise GeocodeAuthError(
            f"Google refused the request: {said or f'HTTP {http_status}'} ({where}). Check "
            "GOOGLE_MAPS_API_KEY / --google-key, that the Geocoding API is enabled for the "
            "key's project and that the key's restrictions allow this host."
        )
    if http_status >= 500 or status == "UNKNOWN_ERROR":
        raise GeocodeUnavailableError(
            f"Google failed: {said or f'HTTP {http_status}'} ({where}); retrying may help"
        )
    if http_status != 200 and status != "INVALID_REQUEST":
        raise GeocodeError(
            f"HTTP {http_status} from {where}: is google_url (--google-url) right? {said}".rstrip()
        )
    if data is None or not status:
        raise GeocodeUnavailableError(f"Google sent a body that is not its JSON ({where})")
    if status == "OK":
        return google_row(data)
    if status == "ZERO_RESULTS":
        return empty_row("ZERO_RESULTS")
    if status == "INVALID_REQUEST":
        return Failed("invalid_request", message or status)
    return Failed("unexpected_status", said)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pick_result(results: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most precise result: street address or premise, else a route, else the first."""
    for wanted in (_PRECISE, ("route",)):
        for result in results:
            if any(kind in wanted for kind in result.get("types") or ()):
                return result
    return results[0] if results else None


def google_row(body: Mapping[str, Any]) -> dict[str, Any]:
    """Map a Google ``OK`` response body to an address row; every field may be missing.

    street ← route, number ← street_number, neighborhood ← sublocality_level_1 ⟶ sublocality
    ⟶ neighborhood, city ← locality ⟶ postal_town ⟶ administrative_area_level_2 (Brazil's big
    cities have no locality), state ← administrative_area_level_1, country ← country (long
    names), postal_code ← postal_code[-postal_code_suffix], plus formatted_address, place_id
    and geometry.location_type of the chosen result (:func:`pick_result`).
    """
    results = [r for r in body.get("results") or () if isinstance(r, dict)]
    result = pick_result(results)
    if result is None:
        return empty_row("ZERO_RESULTS")
    names: dict[str, str] = {}
    for component in result.get("address_components") or ():
        if not isinstance(component, dict):
            continue
        name = component.get("long_name") or component.get("short_name")
        if not name:
            continue
        for kind in component.get("types") or ():
            names.setdefault(kind, name)

    def first(*kinds: str) -> str | None:
        return next((names[k] for k in kinds if k in names), None)

    postal_code = names.get("postal_code")
    if postal_code and names.get("postal_code_suffix"):
        postal_code = f"{postal_code}-{names['postal_code_suffix']}"
    geometry = result.get("geometry")
    geometry = geometry if isinstance(geometry, dict) else {}
    return {
        "street": first("route"),
        "number": first("street_number"),
        "neighborhood": first("sublocality_level_1", "sublocality", "neighborhood"),
        "city": first("locality", "postal_town", "administrative_area_level_2"),
        "postal_code": postal_code,
        "state": first("administrative_area_level_1"),
        "country": first("country"),
        "formatted_address": result.get("formatted_address") or None,
        "place_id": result.get("place_id") or None,
        "location_type": geometry.get("location_type") or None,
        "geocode_status": "OK",
    }
