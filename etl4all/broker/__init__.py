"""Message brokers, chosen by URL scheme: ``amqp://`` (RabbitMQ) or ``memory://`` (in-process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.broker.base import Broker

SCHEMES = {
    "amqp": ("etl4all.broker.amqp:AmqpBroker", "rabbitmq"),
    "amqps": ("etl4all.broker.amqp:AmqpBroker", "rabbitmq"),
    "memory": ("etl4all.broker.memory:MemoryBroker", "core"),
}


def from_url(url: str, **options: Any) -> Broker:
    """Build the broker of ``url`` with its keyword ``options``.

    Both take ``prefix`` and ``max_deliveries``; ``amqp://`` also takes ``prefetch``.

    Raises:
        UnknownSchemeError: no broker serves the URL's scheme.
        MissingDependencyError: the broker's driver is not installed.
    """
    cls = urls.load_class("broker", urls.scheme_of(url), SCHEMES)
    broker: Broker = cls(url=url, **options)
    return broker
