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

    Only that :class:`~etl4all.lookup.warehouse.WarehouseLookup` uses ``warehouse``; see
    :func:`etl4all.urls.build` for the errors.
    """
    if url is None:
        from etl4all.lookup.warehouse import WarehouseLookup

        return WarehouseLookup(warehouse=warehouse)
    return urls.build("lookup", url, SCHEMES)
