"""The queue topology, declared once as plain data; both brokers read it.

Under a prefix (``etl4all`` by default) there are two work queues and one dead-letter queue:

- ``{prefix}.points``: point batches from extract to transform;
- ``{prefix}.addresses``: address batches from transform to load;
- ``{prefix}.dead``: dead letters of both, fed by the fanout exchange ``{prefix}.dlx``.

The work queues are quorum queues with ``x-dead-letter-exchange={prefix}.dlx`` and
``x-delivery-limit=max_deliveries``; the dead-letter queue is a plain quorum queue.
:class:`~etl4all.broker.amqp.AmqpBroker` declares exactly these arguments and
:class:`~etl4all.broker.memory.MemoryBroker` imitates them.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

from etl4all.errors import ConfigError
from etl4all.settings import DEFAULTS

POINTS = "points"
"""Point batches from extract to transform."""
ADDRESSES = "addresses"
"""Address batches from transform to load."""
DEAD = "dead"
"""Dead letters of both queues."""


def name(prefix: str, queue: str) -> str:
    """The full queue name, e.g. ``etl4all.points``."""
    return f"{prefix}.{queue}"


@dataclasses.dataclass(frozen=True)
class QueueSpec:
    """One durable queue: its full name and its declare arguments."""

    name: str
    arguments: Mapping[str, Any]
    """``x-queue-type``, and for a work queue ``x-dead-letter-exchange``, ``x-delivery-limit``."""


@dataclasses.dataclass(frozen=True)
class Topology:
    """Every queue and exchange of one prefix, with the delivery limit of the work queues."""

    prefix: str = DEFAULTS.queue_prefix
    """Prefix of every queue and exchange name."""
    max_deliveries: int = DEFAULTS.max_deliveries
    """Failed deliveries after which the broker itself dead-letters a message."""

    def __post_init__(self) -> None:
        """Refuse an empty prefix (``Settings`` checks the range of ``max_deliveries``).

        Raises:
            ConfigError: the prefix is empty.
        """
        if not self.prefix:
            raise ConfigError("the queue prefix must not be empty")

    @property
    def points(self) -> str:
        """``{prefix}.points``."""
        return name(self.prefix, POINTS)

    @property
    def addresses(self) -> str:
        """``{prefix}.addresses``."""
        return name(self.prefix, ADDRESSES)

    @property
    def dead(self) -> str:
        """``{prefix}.dead``, bound to :attr:`dead_letter_exchange`."""
        return name(self.prefix, DEAD)

    @property
    def dead_letter_exchange(self) -> str:
        """``{prefix}.dlx``: a fanout exchange that routes every dead letter to :attr:`dead`."""
        return f"{self.prefix}.dlx"

    @property
    def work_queues(self) -> tuple[str, str]:
        """The queues whose messages are dead-lettered: points and addresses."""
        return self.points, self.addresses

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        """Every queue to declare: the work queues, then the dead-letter queue."""
        work = types.MappingProxyType(
            {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-delivery-limit": self.max_deliveries,
            }
        )
        dead = types.MappingProxyType({"x-queue-type": "quorum"})
        return (*(QueueSpec(queue, work) for queue in self.work_queues), QueueSpec(self.dead, dead))
