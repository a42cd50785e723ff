"""Reverse geocoders, chosen by name (``offline``, ``google``, ``nominatim``).

:func:`from_name` is the geocoders' factory (the other roles' ``from_url``): a geocoder is a
provider, not a URL, and each takes its own keyword options (see its class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.geocoders.base import Geocoder

NAMES = {
    "offline": ("etl4all.geocoders.offline:OfflineGeocoder", "core"),
    "google": ("etl4all.geocoders.google:GoogleGeocoder", "core"),
    "nominatim": ("etl4all.geocoders.nominatim:NominatimGeocoder", "core"),
}


def from_name(name: str, **options: Any) -> Geocoder:
    """Build the geocoder called ``name`` with its keyword ``options``.

    Raises:
        UnknownSchemeError: ``name`` is not in :data:`NAMES`.
        ConfigError: the options are wrong (e.g. no key for ``google``).
    """
    cls = urls.load_class("geocoder", name, NAMES)
    geocoder: Geocoder = cls(**options)
    return geocoder
