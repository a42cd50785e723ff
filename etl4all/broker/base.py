"""The Broker role: durable queues of batches between the stages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, Self, runtime_checkable


@runtime_checkable
class Delivery(Protocol):
    """One received message."""

    body: bytes
    headers: dict[str, Any]
    redelivered: bool

    def ack(self) -> None:
        """The message's effect is committed: forget it."""
        ...

    def reject(self, *, requeue: bool, reason: str | None = None) -> None:
        """Give the message back (``requeue``) or dead-letter it with ``reason``."""
        ...


@runtime_checkable
class Broker(Protocol):
    """Publishes and consumes batches; a context manager."""

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish persistently; returns only once the broker confirmed the message.

        Raises:
            BrokerError: not confirmed (unroutable, nacked, connection lost).
        """
        ...

    def consume(self, queue: str, *, timeout: float | None = None) -> Iterator[Delivery]:
        """Deliveries from ``queue``; stops after ``timeout`` idle seconds (None: never)."""
        ...

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those held unacknowledged)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...
