"""State stores (file ledger: claims and done marks; geocode cache), chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.state.base import StateStore

SCHEMES = {
    "sqlite": ("etl4all.state.sqlite:SqliteState", "core"),
    "redis": ("etl4all.state.redis:RedisState", "redis"),
    "rediss": ("etl4all.state.redis:RedisState", "redis"),
}


def from_url(url: str, **options: Any) -> StateStore:
    """Build the state store of ``url``, passing ``options`` to its constructor.

    Raises:
        UnknownSchemeError: no store serves the URL's scheme.
        MissingDependencyError: the store's driver is not installed.
        ConfigError: the store refused the URL or an option.
    """
    cls = urls.load_class("state", urls.scheme_of(url), SCHEMES)
    return cls(url=url, **options)
