"""Message brokers, chosen by URL scheme; in-process when no URL is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.broker.base import Broker
    from etl4all.settings import Settings

SCHEMES = {
    "amqp": ("etl4all.broker.amqp:AmqpBroker", "rabbitmq"),
    "memory": ("etl4all.broker.memory:MemoryBroker", "core"),
}


def from_settings(settings: Settings) -> Broker:
    """The broker of ``settings.broker_url`` (``memory://`` when unset)."""
    url = settings.broker_url or "memory://"
    cls = urls.load_class("broker", urls.scheme_of(url), SCHEMES)
    return cls(url=url, settings=settings)
