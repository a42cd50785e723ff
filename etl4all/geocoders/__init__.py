"""Reverse geocoders, chosen by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.geocoders.base import Geocoder
    from etl4all.settings import Settings

NAMES = {
    "offline": ("etl4all.geocoders.offline:OfflineGeocoder", "core"),
    "google": ("etl4all.geocoders.google:GoogleGeocoder", "core"),
    "nominatim": ("etl4all.geocoders.nominatim:NominatimGeocoder", "core"),
}


def from_settings(settings: Settings) -> Geocoder:
    """Build the geocoder named by ``settings.geocoder``."""
    cls = urls.load_class("geocoder", settings.geocoder, NAMES)
    return cls(settings=settings)
