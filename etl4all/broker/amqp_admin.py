"""A RabbitMQ broker's operator's path: :class:`AmqpAdmin`, run in its I/O thread.

Queue counts and purges each use a private channel (a passive ``queue.declare``). Dead letters
are written by republishing to ``{prefix}.dlx`` with the reason headers, then acking the
original (RabbitMQ's own dead-lettering cannot add a header); read with ``basic.get`` and
returned in their order with one ``basic.nack``; one returned ``_REFRESH_AFTER`` times is
republished fresh, as RabbitMQ 4 drops a message after 20 returns. Why each step loses nothing:
docs/backends.md (Broker, queues and dead letters)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from etl4all.broker import amqp_errors, amqp_io
from etl4all.broker.base import DELIVERY_COUNT_HEADER
from etl4all.broker.dead import DeadLetter, Replayed, Select, replay_headers
from etl4all.broker.queues import Topology

log = logging.getLogger(__name__)

_REFRESH_AFTER = 10
"""Returns after which a dead letter that was read is republished fresh (limit 20 on RabbitMQ 4)."""
_RETURN_WAIT = 5.0
"""Seconds a read of the dead letters waits for the quorum queue to count its returns again."""

Publish = Callable[[str, str, bytes, Any], None]
"""A confirmed publish: (exchange, routing key, body, properties)."""


class AmqpAdmin:
    """Counts and purges the queues of a topology, and reads and replays its dead letters;
    call it in the broker's I/O thread.

    Args:
        url: the broker URL, redacted (for errors).
        topology: the queues.
        live: the I/O thread's current connection.
        publish: the broker's confirmed publish.
    """

    def __init__(
        self, url: str, topology: Topology, live: Callable[[], BlockingConnection], publish: Publish
    ) -> None:
        self._url = url
        self._topology = topology
        self._live = live
        self._publish = publish

    def queue(self, queue: str, action: Literal["depth", "consumers", "purge"]) -> int:
        """Messages ready in ``queue`` (``depth``), its consumers (``consumers``), or the
        ready messages dropped (``purge``)."""
        with amqp_errors.mapped(self._url, f"{action} of {queue}"):
            channel = self._live().channel()
            try:
                if action == "purge":
                    return int(channel.queue_purge(queue).method.message_count)
                declared = channel.queue_declare(queue, passive=True).method
                if action == "consumers":
                    return int(declared.consumer_count)
                return int(declared.message_count)
            finally:
                if channel.is_open:
                    channel.close()

    def sweep(self, select: Select | None) -> tuple[list[DeadLetter], Replayed]:
        """Take the ready dead letters, send the selected ones back, return the rest in order."""
        queue, work_queues = self._topology.dead, self._topology.work_queues
        kept: list[DeadLetter] = []
        replayed = Replayed()
        with amqp_errors.mapped(self._url, f"reading the dead letters of {queue}"):
            channel = self._live().channel()
            ready = channel.queue_declare(queue, passive=True).method.message_count
            try:
                for _ in range(ready):
                    method, properties, body = channel.basic_get(queue, auto_ack=False)
                    if method is None:
                        break
                    headers = dict(properties.headers or {})
                    letter = DeadLetter.from_headers(headers)
                    target = (
                        None if select is None else replayed.target(letter, select, work_queues)
                    )
                    if target is not None:
                        self._republish(target, body, replay_headers(headers, letter))
                        channel.basic_ack(method.delivery_tag)
                        replayed.count(letter, target)
                        continue
                    kept.append(letter)
                    if int(headers.get(DELIVERY_COUNT_HEADER) or 0) >= _REFRESH_AFTER:
                        del headers[DELIVERY_COUNT_HEADER]
                        self._republish(queue, body, headers)
                        channel.basic_ack(method.delivery_tag)
            finally:
                if channel.is_open:  # return what it still holds, after a failure too
                    channel.basic_nack(0, multiple=True, requeue=True)
                    self._await_ready(channel, queue, ready - sum(replayed.sent.values()))
                    channel.close()
        return kept, replayed

    def _await_ready(self, channel: BlockingChannel, queue: str, count: int) -> None:
        """Wait (up to ``_RETURN_WAIT`` s) until ``queue`` shows ``count`` ready messages again.

        A quorum queue applies returned messages a moment after the nack; without the wait a
        ``depth`` (``etl4all status``) right after a read could miss them.
        """
        deadline = time.monotonic() + _RETURN_WAIT
        while channel.queue_declare(queue, passive=True).method.message_count < count:
            if time.monotonic() >= deadline:
                log.warning("%s shows fewer messages than were returned to it; consumed?", queue)
                return
            self._live().sleep(0.01)

    def _republish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        properties = amqp_io.message_properties(self._url, headers)
        self._publish("", queue, body, properties)
