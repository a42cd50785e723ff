"""Settings → backends and stage configs: the one place that reads ``Settings`` for them.

Every backend is built by its role's factory from a URL (a name for geocoders) and the few
keyword options it uses; this module picks those options out of ``Settings``. Stages get a
small frozen config each, built here too.

Importing this module imports no data library (Polars, PyArrow, DuckDB, aiohttp): each
backend's module is imported when it is opened, so a run with nothing new, which opens only
its source and state, starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import broker, geocoders, lookup, sources, state, urls, warehouse
from etl4all import quota as quotas
from etl4all.settings import Settings
from etl4all.stages.extract_config import ExtractConfig

if TYPE_CHECKING:
    from etl4all.broker import BrokerBackend
    from etl4all.geocoders.base import Geocoder
    from etl4all.lookup.base import Lookup
    from etl4all.quota.base import Quota
    from etl4all.sources.base import Source
    from etl4all.stages.transform import TransformConfig
    from etl4all.state.base import StateStore
    from etl4all.warehouse.base import Warehouse, WarehouseBackend


def open_source(url: str, settings: Settings) -> Source:
    """The source of ``url`` (a folder or a URL of :data:`etl4all.sources.SCHEMES`)."""
    return sources.from_url(url, pattern=settings.file_pattern)


def open_state(settings: Settings) -> StateStore:
    """The state store (file ledger and geocode cache) of ``settings.state_url``."""
    return state.from_url(settings.state_url)


def open_quota(settings: Settings) -> Quota:
    """The request quota the API geocoders share: the fleet's in Redis when the state URL is
    ``redis://`` (with ``settings.max_calls_per_day``), else this process's."""
    return quotas.from_url(settings.state_url, max_calls_per_day=settings.max_calls_per_day)


def open_geocoder(settings: Settings, quota: Quota) -> Geocoder:
    """The geocoder named by ``settings.geocoder``, with the options of that provider; an API
    geocoder takes its endpoint's limiter from ``quota`` (:func:`open_quota`)."""
    http: dict[str, Any] = {
        "language": settings.language,
        "qps": settings.qps,
        "concurrency": settings.concurrency,
        "max_attempts": settings.max_attempts,
        "timeout": settings.request_timeout,
        "connect_timeout": settings.request_connect_timeout,
        "quota": quota,
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


def geocoder_is_paid(settings: Settings) -> bool:
    """Whether the geocoder named by ``settings.geocoder`` is a paid API (without building it)."""
    return bool(urls.load_class("geocoder", settings.geocoder, geocoders.NAMES).paid)


def open_broker(settings: Settings, *, quick: bool = False) -> BrokerBackend:
    """The broker of ``settings.broker_url`` (in-process ``memory://`` when unset).

    Args:
        quick: a RabbitMQ that does not answer fails after one attempt, not after the
            retries (unless its URL sets ``reconnect_attempts``): for checks.
    """
    url = settings.broker_url or "memory://"
    # only RabbitMQ has a prefetch window and a connection to wait for
    window: dict[str, Any] = (
        {}
        if urls.scheme_of(url) == "memory"
        else {"prefetch": settings.prefetch, "connect_timeout": settings.connect_timeout}
    )
    if quick and window:
        window["reconnect_attempts"] = 0
    return broker.from_url(
        url, prefix=settings.queue_prefix, max_deliveries=settings.max_deliveries, **window
    )


def open_warehouse(settings: Settings) -> WarehouseBackend:
    """The warehouse of ``settings.warehouse_url``."""
    url = settings.warehouse_url
    # only MySQL spools its loads to local files
    mysql = urls.scheme_of(url) == "mysql"
    spool: dict[str, Any] = {"spool_dir": settings.spool_dir} if mysql else {}
    return warehouse.from_url(url, **spool)


def open_lookup(settings: Settings, wh: Warehouse) -> Lookup:
    """The lookup of ``settings.lookup_url``, or one that asks ``wh`` when unset."""
    return lookup.from_url(settings.lookup_url, warehouse=wh)


def extract_config(settings: Settings, *, ordered: bool = False) -> ExtractConfig:
    """The extract stage's config; ``ordered`` for a driver that applies a file's items in
    order, in one process (the embedded run)."""
    return ExtractConfig(
        scope=urls.redact(settings.warehouse_url),
        batch_rows=settings.batch_rows,
        lease_seconds=settings.lease_seconds,
        settle_seconds=settings.settle_seconds,
        poll_interval=settings.poll_interval,
        once=settings.once,
        final_seconds=settings.final_seconds,
        force_all=settings.force,
        force_files=settings.force_files,
        accept_shrink=settings.accept_shrink,
        ordered=ordered,
    )


def transform_config(settings: Settings) -> TransformConfig:
    """The transform stage's config."""
    from etl4all.stages.transform import TransformConfig

    return TransformConfig(
        precision=settings.geocode_precision,
        cache_scope=f"{settings.geocoder}:{settings.language}:{settings.geocode_precision}",
        cache_ttl_seconds=settings.cache_ttl_days * 86400,
    )
