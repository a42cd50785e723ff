"""State stores (files done, claims, geocode cache), chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.settings import Settings
    from etl4all.state.base import State

SCHEMES = {
    "sqlite": ("etl4all.state.sqlite:SqliteState", "core"),
    "redis": ("etl4all.state.redis:RedisState", "redis"),
}


def from_settings(settings: Settings) -> State:
    """Build the state store of ``settings.state_url``."""
    cls = urls.load_class("state", urls.scheme_of(settings.state_url), SCHEMES)
    return cls(url=settings.state_url)
