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
    """The state store of ``url`` (see :func:`etl4all.urls.build`); SQLite takes a ``clock``."""
    return urls.build("state", url, SCHEMES, **options)
