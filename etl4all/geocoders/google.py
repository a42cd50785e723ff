"""``google``: the Google Geocoding API (legacy web service), reverse geocoding.

``GET {url}?latlng=LAT,LNG&key=KEY&language=LANG[&result_type=T1|T2][&location_type=L]``, one
request per coordinate. Options (keyword-only): ``key`` (required, never logged), ``url``
(default :data:`DEFAULT_URL`; a URL with no path gets Google's), ``language``, ``result_type``,
``location_type``, ``qps`` (default 40, below Google's 3,000 a minute) and the runner options
of :class:`~etl4all.geocoders.api.HttpOptions`. Driver: aiohttp. :func:`interpret` is the one
place that maps answers to outcomes; its table is in docs/geocoding.md (Google).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import yarl

from etl4all.errors import (
    ConfigError,
    GeocodeAuthError,
    GeocodeEndpointError,
    GeocodeQuotaError,
    GeocodeUnavailableError,
    RateLimitedError,
)
from etl4all.geocoders import api
from etl4all.geocoders.outcomes import Failed, Outcome
from etl4all.geocoders.runner import degrees

log = logging.getLogger(__name__)

DEFAULT_URL = "https://maps.googleapis.com/maps/api/geocode/json"
"""Google's endpoint."""
GEOCODE_PATH = "/maps/api/geocode/json"
"""The endpoint's path, appended to a ``url`` given without one."""
DEFAULT_QPS = 40.0
"""Requests per second when ``qps`` is not given (Google allows 3,000 per minute)."""
GOOGLE_MAX_QPS = 50.0
"""Google's documented limit; a higher ``qps`` only buys OVER_QUERY_LIMIT answers."""

_PRECISE = ("street_address", "premise", "subpremise")
_DAILY = re.compile(r"daily|per day|per-day", re.I)


def interpret(
    http_status: int, body: bytes, *, retry_after: str | None = None, where: object = "google"
) -> Outcome:
    """Map one Google response to a row, a :class:`Failed` key, or an exception.

    Args:
        http_status: the HTTP status code.
        body: the raw response body.
        retry_after: the ``Retry-After`` header, if any.
        where: shows the redacted request URL in messages (formatted only on errors).

    Raises:
        RateLimitedError, GeocodeUnavailableError: retryable.
        GeocodeAuthError, GeocodeQuotaError, GeocodeEndpointError: the batch must stop.
    """
    data = api.json_object(body)
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
            retry_after=api.retry_after_seconds(retry_after),
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
        raise GeocodeEndpointError(
            f"HTTP {http_status} from {where}: is google_url (--google-url) right? {said}".rstrip()
        )
    if data is None or not status:
        raise GeocodeUnavailableError(f"Google sent a body that is not its JSON ({where})")
    if status == "OK":
        return google_row(data)
    if status == "ZERO_RESULTS":
        return api.empty_row("ZERO_RESULTS")
    if status == "INVALID_REQUEST":
        return Failed("invalid_request", message or status)
    return Failed("unexpected_status", said)


class GoogleGeocoder(api.ApiGeocoder):
    """Reverse geocoder backed by the Google Geocoding API; a context manager.

    Args:
        key: the API key.
        url: the endpoint (a bare base URL gets Google's path).
        language: language of the addresses.
        result_type, location_type: Google's result filters, if any.
        qps: requests per second (default :data:`DEFAULT_QPS`).
        options: see :class:`~etl4all.geocoders.api.HttpOptions`.

    Raises:
        ConfigError: no API key, or a ``url`` that is not an http(s) URL.
    """

    name = "google"
    default_qps = DEFAULT_QPS
    max_qps = GOOGLE_MAX_QPS
    url_option = "google_url"
    interpret = staticmethod(interpret)

    def __init__(
        self,
        *,
        key: str | None,
        url: str = DEFAULT_URL,
        language: str = "pt-BR",
        result_type: str | None = None,
        location_type: str | None = None,
        qps: float | None = None,
        **options: Unpack[api.HttpOptions],
    ) -> None:
        key = (key or "").strip()
        if not key:
            raise ConfigError(
                "the google geocoder needs an API key: set GOOGLE_MAPS_API_KEY "
                "or pass --google-key (or choose --geocoder offline or nominatim)"
            )
        endpoint = self.check_url(url)
        if endpoint.path in ("", "/"):  # a bare base URL: Google's own path under it
            endpoint = endpoint.with_path(GEOCODE_PATH)
        self._params = {"key": key, "language": language}
        if result_type:
            self._params["result_type"] = result_type
        if location_type:
            self._params["location_type"] = location_type
        super().__init__(endpoint=endpoint, qps=qps, secret=key, **options)

    def request_url(self, latitude: float, longitude: float) -> yarl.URL:
        """``url?latlng=LAT,LNG&key=…&language=…`` plus the filters."""
        latlng = f"{degrees(latitude)},{degrees(longitude)}"
        return self.endpoint.update_query({"latlng": latlng, **self._params})


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
        return api.empty_row("ZERO_RESULTS")
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
