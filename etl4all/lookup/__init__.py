"""Lookups of loaded keys, chosen by URL scheme; the warehouse itself when no URL is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.lookup.base import Lookup
    from etl4all.warehouse.base import Warehouse

SCHEMES = {
    "mongodb": ("etl4all.lookup.mongodb:MongoLookup", "mongodb"),
    "mongomock": ("etl4all.lookup.mongodb:MongomockLookup", "dev"),
}


def from_url(url: str | None, *, warehouse: Warehouse) -> Lookup:
    """The lookup of ``url``, or one that asks ``warehouse`` when ``url`` is None.

    Only that :class:`~etl4all.lookup.warehouse.WarehouseLookup` uses ``warehouse``.

    Raises:
        UnknownSchemeError: no backend for the URL's scheme.
        MissingDependencyError: the backend's driver is not installed.
        ConfigError: a bad URL.
    """
    if url is None:
        from etl4all.lookup.warehouse import WarehouseLookup

        return WarehouseLookup(warehouse=warehouse)
    cls = urls.load_class("lookup", urls.scheme_of(url), SCHEMES)
    return cls(url=url)
