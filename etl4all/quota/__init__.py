"""Request quotas of the API geocoders, chosen by the state URL's scheme: in this process
(no state URL, ``sqlite://``, ``memory://``) or the fleet's in Redis (``redis://``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.quota.base import Quota

SCHEMES = {
    "memory": ("etl4all.quota.memory:MemoryQuota", "core"),
    "sqlite": ("etl4all.quota.memory:MemoryQuota", "core"),
    "redis": ("etl4all.quota.redis:RedisQuota", "redis"),
    "rediss": ("etl4all.quota.redis:RedisQuota", "redis"),
}


def from_url(url: str | None, **options: Any) -> Quota:
    """The quota of ``url`` (``memory://`` when None) with ``max_calls_per_day``, ``clock``
    and ``sleep``; see :func:`etl4all.urls.build`."""
    return urls.build("quota", url or "memory://", SCHEMES, **options)
