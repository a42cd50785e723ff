"""``nominatim``: OpenStreetMap's Nominatim reverse API (public server or self-hosted).

``GET {url}/reverse?format=jsonv2&lat=LAT&lon=LON&addressdetails=1&accept-language=L``, one
request per coordinate. Options (keyword-only): ``url`` (default :data:`DEFAULT_URL`),
``user_agent``, ``language``, ``qps`` (self-hosted only; default 50) and the runner options of
:class:`~etl4all.geocoders.api.HttpOptions`. Driver: aiohttp. Against the public server it
refuses to start without a ``user_agent`` and caps itself at 1 request/s, one at a time, as
its usage policy requires. Answers (:func:`interpret`): docs/geocoding.md (Nominatim).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Unpack

import yarl

from etl4all import __version__
from etl4all.errors import (
    ConfigError,
    GeocodeAuthError,
    GeocodeEndpointError,
    GeocodeUnavailableError,
    RateLimitedError,
)
from etl4all.geocoders import api
from etl4all.geocoders.outcomes import Failed, Outcome
from etl4all.geocoders.runner import degrees

log = logging.getLogger(__name__)

DEFAULT_URL = "https://nominatim.openstreetmap.org"
"""The public server."""
PUBLIC_HOSTS = frozenset({"nominatim.openstreetmap.org"})
"""Servers bound by the OSMF usage policy (1 request/s, identifying User-Agent)."""
PUBLIC_QPS = 1.0
"""The public server's absolute maximum."""
DEFAULT_QPS = 50.0
"""Requests per second against a self-hosted server when ``qps`` is not given."""
_LIBRARY_AGENTS = ("python-requests", "python-urllib", "python/", "aiohttp", "curl/", "wget/")

_STREET_KEYS = ("road", "pedestrian", "footway", "path", "cycleway", "square", "highway")
_NEIGHBORHOOD_KEYS = ("suburb", "neighbourhood", "quarter")
_CITY_KEYS = ("city", "town", "village", "municipality")


def interpret(
    http_status: int, body: bytes, *, retry_after: str | None = None, where: object = "nominatim"
) -> Outcome:
    """Map one Nominatim response to a row, a :class:`Failed` key, or an exception.

    Raises:
        RateLimitedError, GeocodeUnavailableError: retryable.
        GeocodeAuthError, GeocodeEndpointError: the batch must stop.
    """
    if http_status == 429:
        raise RateLimitedError(
            f"Nominatim answered HTTP 429 ({where}): too many requests",
            retry_after=api.retry_after_seconds(retry_after),
        )
    if http_status >= 500:
        raise GeocodeUnavailableError(f"Nominatim failed: HTTP {http_status} ({where})")
    if http_status in (401, 403):
        raise GeocodeAuthError(
            f"Nominatim blocked the request: HTTP {http_status} ({where}). Check the "
            "User-Agent (ETL4ALL_USER_AGENT) and the server's usage policy (the public "
            "server allows 1 request/s, no bulk geocoding), or use your own server."
        )
    data = api.json_object(body)
    if http_status == 400:
        return Failed("invalid_request", _error_text(data) or "HTTP 400")
    if http_status != 200:
        raise GeocodeEndpointError(
            f"HTTP {http_status} from {where}: is nominatim_url (ETL4ALL_NOMINATIM_URL) right?"
        )
    if data is None:
        raise GeocodeUnavailableError(f"Nominatim sent a body that is not its JSON ({where})")
    if "error" in data:
        text = _error_text(data)
        if text and "unable to geocode" in text.lower():
            return api.empty_row("ZERO_RESULTS")
        return Failed("invalid_request", text or "error")
    return nominatim_row(data)


class NominatimGeocoder(api.ApiGeocoder):
    """Reverse geocoder backed by a Nominatim server; a context manager.

    Args:
        url: the server's base URL (``/reverse`` is appended).
        user_agent: the User-Agent header (default ``etl4all/VERSION`` on a self-hosted server).
        language: ``accept-language`` of the addresses (none sent when empty).
        qps: requests per second (default :data:`DEFAULT_QPS`; at most 1 on the public server).
        options: see :class:`~etl4all.geocoders.api.HttpOptions`.

    Raises:
        ConfigError: no (or a library-default) User-Agent against the public server, or a
            ``url`` that is not an http(s) URL.
    """

    name = "nominatim"
    default_qps = DEFAULT_QPS
    url_option = "nominatim_url"
    interpret = staticmethod(interpret)

    def __init__(
        self,
        *,
        url: str = DEFAULT_URL,
        user_agent: str | None = None,
        language: str | None = "pt-BR",
        qps: float | None = None,
        **options: Unpack[api.HttpOptions],
    ) -> None:
        base = self.check_url(url)
        self.public = (base.host or "").lower() in PUBLIC_HOSTS
        agent = (user_agent or "").strip()
        if self.public and (not agent or agent.lower().startswith(_LIBRARY_AGENTS)):
            raise ConfigError(
                f"the public Nominatim server ({base.host}) requires an identifying "
                "User-Agent: set ETL4ALL_USER_AGENT (e.g. 'acme-etl/1.0 (ops@acme.example)'), "
                "or point ETL4ALL_NOMINATIM_URL at your own server"
            )
        self._language = language
        if self.public:
            if (qps or 0) > PUBLIC_QPS or (
                options.get("concurrency") or api.DEFAULT_CONCURRENCY
            ) > 1:
                log.info("public Nominatim server: limited to 1 request/s, one at a time")
            qps = min(qps or PUBLIC_QPS, PUBLIC_QPS)
            options["concurrency"] = 1
        super().__init__(
            endpoint=base.with_path(base.path.rstrip("/") + "/reverse").with_query(None),
            qps=qps,
            headers={"User-Agent": agent or f"etl4all/{__version__}"},
            **options,
        )

    def request_url(self, latitude: float, longitude: float) -> yarl.URL:
        """``url/reverse?format=jsonv2&lat=…&lon=…&addressdetails=1[&accept-language=…]``."""
        params = {
            "format": "jsonv2",
            "lat": degrees(latitude),
            "lon": degrees(longitude),
            "addressdetails": "1",
        }
        if self._language:
            params["accept-language"] = self._language
        return self.endpoint.with_query(params)


def _error_text(data: Mapping[str, Any] | None) -> str | None:
    """The message of ``{"error": "..."}`` or ``{"error": {"message": "..."}}``."""
    error = data.get("error") if data is not None else None
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
