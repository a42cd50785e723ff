"""``nominatim``: OpenStreetMap's Nominatim reverse API (public server or self-hosted).

URL form (one request per coordinate)::

    GET {nominatim_url}/reverse?format=jsonv2&lat=LAT&lon=LON&addressdetails=1&accept-language=L

Settings read: ``nominatim_url`` (default ``https://nominatim.openstreetmap.org``),
``user_agent`` (sent as the User-Agent header; required by the public server's usage policy),
``language``, ``qps`` and ``concurrency`` (self-hosted only; default 50 requests/s),
``max_attempts``, ``request_timeout``. Driver: aiohttp (rate limit, concurrency and retries in
:mod:`etl4all.geocoders.ratelimit`).

The public server (``nominatim.openstreetmap.org``) allows at most 1 request per second, one
at a time, from an application that identifies itself: against it this geocoder refuses to
start without a ``user_agent`` and caps itself at 1 request/s and 1 in flight whatever the
settings say. Results are © OpenStreetMap contributors (ODbL): show the attribution.

Status handling (:func:`interpret`): 200 → :func:`nominatim_row`; ``{"error": "Unable to
geocode"}`` → a ZERO_RESULTS row; HTTP 400 → failed row ``invalid_request``; 403 →
GeocodeAuthError (blocked: check the User-Agent and the usage policy); 429 →
RateLimitedError; 5xx or a body that is not JSON → GeocodeUnavailableError (both retried);
other 4xx → GeocodeError (wrong URL: the batch stops).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import polars as pl

from etl4all import __version__, urls
from etl4all.closing import Closing
from etl4all.errors import (
    ConfigError,
    GeocodeAuthError,
    GeocodeError,
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

PUBLIC_HOSTS = frozenset({"nominatim.openstreetmap.org"})
"""Servers bound by the OSMF usage policy (1 request/s, identifying User-Agent)."""
PUBLIC_QPS = 1.0
"""The public server's absolute maximum."""
DEFAULT_QPS = 50.0
"""Requests per second against a self-hosted server when ``settings.qps`` is not set."""
_LIBRARY_AGENTS = ("python-requests", "python-urllib", "python/", "aiohttp", "curl/", "wget/")

_STREET_KEYS = ("road", "pedestrian", "footway", "path", "cycleway", "square", "highway")
_NEIGHBORHOOD_KEYS = ("suburb", "neighbourhood", "quarter")
_CITY_KEYS = ("city", "town", "village", "municipality")


class NominatimGeocoder(Closing):
    """Reverse geocoder backed by a Nominatim server; a context manager.

    Args:
        settings: see the module docstring for the fields read.
        sleep: async sleep used for backoff waits (tests inject a fast one).
        limiter: QPS cap; default the process-wide one for ``nominatim_url``.

    Raises:
        ConfigError: no (or a library-default) User-Agent against the public server, or a
            ``nominatim_url`` that is not an http(s) URL.
    """

    name = "nominatim"
    paid = True

    def __init__(
        self,
        *,
        settings: Settings,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        base = http_url(settings.nominatim_url, "nominatim_url")
        self.public = (base.host or "").lower() in PUBLIC_HOSTS
        agent = (settings.user_agent or "").strip()
        if self.public and (not agent or agent.lower().startswith(_LIBRARY_AGENTS)):
            raise ConfigError(
                f"the public Nominatim server ({base.host}) requires an identifying "
                "User-Agent: set ETL4ALL_USER_AGENT (e.g. 'acme-etl/1.0 (ops@acme.example)'), "
                "or point ETL4ALL_NOMINATIM_URL at your own server"
            )
        self._url = base.with_path(base.path.rstrip("/") + "/reverse").with_query(None)
        self._language = settings.language
        if self.public:
            if (settings.qps or 0) > PUBLIC_QPS or settings.concurrency > 1:
                log.info("public Nominatim server: limited to 1 request/s, one at a time")
            qps = min(settings.qps or PUBLIC_QPS, PUBLIC_QPS)
            concurrency = 1
        else:
            qps = settings.qps or DEFAULT_QPS
            concurrency = settings.concurrency
        self._runner = HttpRunner(
            name=self.name,
            limiter=limiter or shared_limiter(str(self._url), qps),
            concurrency=concurrency,
            max_attempts=settings.max_attempts,
            timeout=settings.request_timeout,
            headers={"User-Agent": agent or f"etl4all/{__version__}"},
            sleep=sleep,
        )

    @property
    def qps(self) -> float:
        """The effective request rate cap."""
        return self._runner.limiter.qps

    @property
    def concurrency(self) -> int:
        """The effective number of requests in flight."""
        return self._runner.concurrency

    def __repr__(self) -> str:
        return f"NominatimGeocoder(url={urls.redact(str(self._url))!r}, runner={self._runner!r})"

    def reverse(self, keys: pl.DataFrame) -> Geocoded:
        """Geocode distinct ``keys`` (``KEYS_SCHEMA``): one request per key, plus retries.

        Raises:
            GeocodeAuthError: the server blocked us (HTTP 403).
            GeocodeError: an HTTP 4xx that no retry can fix (wrong ``nominatim_url``).
        """
        return self._runner.run(keys, self._request)

    def close(self) -> None:
        """Nothing to release: each :meth:`reverse` opens and closes its own HTTP session."""

    async def _request(
        self, session: aiohttp.ClientSession, latitude: float, longitude: float
    ) -> Outcome:
        params = {
            "format": "jsonv2",
            "lat": degrees(latitude),
            "lon": degrees(longitude),
            "addressdetails": "1",
        }
        if self._language:
            params["accept-language"] = self._language
        url = self._url.with_query(params)
        shown = urls.redact(str(url))
        log.debug("nominatim GET %s", shown)
        with transport_errors(shown):
            async with session.get(url) as response:
                body = await response.read()
        return interpret(
            response.status, body, retry_after=response.headers.get("Retry-After"), where=shown
        )


def interpret(
    http_status: int, body: bytes, *, retry_after: str | None = None, where: str = "nominatim"
) -> Outcome:
    """Map one Nominatim response to a row, a :class:`Failed` key, or an exception.

    Raises:
        RateLimitedError, GeocodeUnavailableError: retryable.
        GeocodeAuthError, GeocodeError: the batch must stop.
    """
    if http_status == 429:
        raise RateLimitedError(
            f"Nominatim answered HTTP 429 ({where}): too many requests",
            retry_after=retry_after_seconds(retry_after),
        )
    if http_status >= 500:
        raise GeocodeUnavailableError(f"Nominatim failed: HTTP {http_status} ({where})")
    if http_status in (401, 403):
        raise GeocodeAuthError(
            f"Nominatim blocked the request: HTTP {http_status} ({where}). Check the "
            "User-Agent (ETL4ALL_USER_AGENT) and the server's usage policy (the public "
            "server allows 1 request/s, no bulk geocoding), or use your own server."
        )
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        data = None
    if http_status == 400:
        return Failed("invalid_request", _error_text(data) or "HTTP 400")
    if http_status != 200:
        raise GeocodeError(
            f"HTTP {http_status} from {where}: is nominatim_url (ETL4ALL_NOMINATIM_URL) right?"
        )
    if not isinstance(data, dict):
        raise GeocodeUnavailableError(f"Nominatim sent a body that is not its JSON ({where})")
    if "error" in data:
        text = _error_text(data)
        if text and "unable to geocode" in text.lower():
            return empty_row("ZERO_RESULTS")
        return Failed("invalid_request", text or "error")
    return nominatim_row(data)


def _error_text(data: Any) -> str | None:
    """The message of ``{"error": "..."}`` or ``{"error": {"message": "..."}}``."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error) if error else None


def nominatim_row(body: Mapping[str, Any]) -> dict[str, Any]:
    """Map a Nominatim jsonv2 reverse result to an address row; every field may be missing.

    number ← house_number, street ← road (or pedestrian, footway, …), neighborhood ← suburb ⟶
    neighbourhood ⟶ quarter, city ← city ⟶ town ⟶ village ⟶ municipality, state, country,
    postal_code ← postcode, formatted_address ← display_name, place_id ← ``osm_type/osm_id``
    (Nominatim's own place_id differs between servers and imports), location_type null.
    """
    address = body.get("address") or {}

    def first(keys: tuple[str, ...]) -> str | None:
        return next((str(address[k]) for k in keys if address.get(k)), None)

    osm_type, osm_id = body.get("osm_type"), body.get("osm_id")
    return {
        "street": first(_STREET_KEYS),
        "number": first(("house_number",)),
        "neighborhood": first(_NEIGHBORHOOD_KEYS),
        "city": first(_CITY_KEYS),
        "postal_code": first(("postcode",)),
        "state": first(("state",)),
        "country": first(("country",)),
        "formatted_address": body.get("display_name") or None,
        "place_id": f"{osm_type}/{osm_id}" if osm_type and osm_id is not None else None,
        "location_type": None,
        "geocode_status": "OK",
    }
