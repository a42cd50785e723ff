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
    """The broker of ``url`` with ``prefix`` and ``max_deliveries`` (``amqp://`` also takes
    ``prefetch``); see :func:`etl4all.urls.build`."""
    return urls.build("broker", url, SCHEMES, **options)
