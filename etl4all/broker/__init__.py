"""Message brokers, chosen by URL scheme: ``amqp://`` (RabbitMQ) or ``memory://`` (in-process)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from etl4all import urls
from etl4all.broker.base import Broker, BrokerAdmin
from etl4all.broker.dead import DeadLetters

SCHEMES = {
    "amqp": ("etl4all.broker.amqp:AmqpBroker", "rabbitmq"),
    "amqps": ("etl4all.broker.amqp:AmqpBroker", "rabbitmq"),
    "memory": ("etl4all.broker.memory:MemoryBroker", "core"),
}


@runtime_checkable
class BrokerBackend(Broker, BrokerAdmin, DeadLetters, Protocol):
    """One broker serving every broker role (data path, operations, dead letters), as
    :func:`from_url` builds it."""


def from_url(url: str, **options: Any) -> BrokerBackend:
    """The broker of ``url`` with ``prefix`` and ``max_deliveries`` (``amqp://`` also takes
    ``prefetch``); see :func:`etl4all.urls.build`."""
    return urls.build("broker", url, SCHEMES, **options)
