"""Settings → backends and stage configs: the one place that reads ``Settings`` for them.

Every backend is built by its role's factory from a URL (a name for geocoders) and the few
keyword options it uses; this module picks those options out of ``Settings``. Stages get a
small frozen config each, built here too.
"""

from __future__ import annotations

from typing import Any

from etl4all import broker, geocoders, lookup, sources, state, warehouse
from etl4all.broker.base import Broker
from etl4all.geocoders.base import Geocoder
from etl4all.lookup.base import Lookup
from etl4all.settings import Settings
from etl4all.sources.base import Source
from etl4all.state.base import State
from etl4all.warehouse.base import Warehouse


def open_source(url: str, settings: Settings) -> Source:
    """The source of ``url`` (a folder, ``file://`` or ``ftp://``)."""
    return sources.from_url(url, settings)


def open_state(settings: Settings) -> State:
    """The state store (file ledger and geocode cache) of ``settings.state_url``."""
    return state.from_settings(settings)


def open_geocoder(settings: Settings) -> Geocoder:
    """The geocoder named by ``settings.geocoder``, with the options of that provider."""
    http: dict[str, Any] = {
        "language": settings.language,
        "qps": settings.qps,
        "concurrency": settings.concurrency,
        "max_attempts": settings.max_attempts,
        "timeout": settings.request_timeout,
    }
    options: dict[str, dict[str, Any]] = {
        "google": {
            "key": settings.google_key,
            "url": settings.google_url,
            "result_type": settings.result_type,
            "location_type": settings.location_type,
            **http,
        },
        "nominatim": {"url": settings.nominatim_url, "user_agent": settings.user_agent, **http},
    }
    return geocoders.from_name(settings.geocoder, **options.get(settings.geocoder, {}))


def open_broker(settings: Settings) -> Broker:
    """The broker of ``settings.broker_url`` (in-process when unset)."""
    return broker.from_settings(settings)


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse of ``settings.warehouse_url``."""
    return warehouse.from_url(settings.warehouse_url)


def open_lookup(settings: Settings, wh: Warehouse) -> Lookup:
    """The lookup of ``settings.lookup_url``, or one that asks ``wh`` when unset."""
    return lookup.from_url(settings.lookup_url, wh)
