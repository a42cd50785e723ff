"""RabbitMQ broker (``amqp://``): :class:`AmqpBroker` and its deliveries, on pika.

URL: ``amqp://user:password@host:5672/vhost?heartbeat=30`` (``amqps://`` for TLS); every pika
URL option works (timeouts: :data:`~etl4all.broker.amqp_io.DEFAULTS`), plus etl4all's own
``reconnect_attempts`` (default 8). Options: ``prefix``, ``prefetch``, ``max_deliveries``,
``connect_timeout``. Driver: pika (``pip install 'etl4all[rabbitmq]'``). Publishes are
persistent, confirmed and ``mandatory``; the connection lives in a private I/O thread
(:mod:`etl4all.broker.amqp_io`) that keeps heartbeats alive and reconnects; queue counts,
purges and reading dead letters are :mod:`etl4all.broker.amqp_admin`. Timeouts, topology and
why: docs/backends.md (Broker).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue as queue_mod
import time
from collections.abc import Iterator
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from etl4all import urls
from etl4all.broker import amqp_admin, amqp_errors, amqp_io
from etl4all.broker.base import BATCH_ID_HEADER
from etl4all.broker.dead import DeadLetter, Replayed, Select, buried_headers
from etl4all.broker.queues import Topology
from etl4all.closing import Closing
from etl4all.errors import BrokerConfigError, BrokerError
from etl4all.settings import DEFAULTS

log = logging.getLogger(__name__)

_REASON_MAX = 4000
"""Longest reason text stored in a dead letter's header."""


@dataclasses.dataclass(eq=False)
class _Consumer:
    queue: str
    inbox: queue_mod.SimpleQueue[tuple[BlockingChannel, Any, Any, bytes] | BrokerError]
    channel: BlockingChannel | None = None
    tag: str | None = None


class AmqpDelivery:
    """A message received from RabbitMQ; ack or reject it once, from any thread."""

    def __init__(
        self,
        broker: AmqpBroker,
        consumer: _Consumer,
        channel: BlockingChannel,
        method: Any,
        properties: Any,
        body: bytes,
    ) -> None:
        self._broker = broker
        self._consumer = consumer
        self._channel = channel
        self._tag: int = method.delivery_tag
        self.body = body
        self.headers: dict[str, Any] = dict(properties.headers or {})
        self.redelivered: bool = bool(method.redelivered)

    def ack(self) -> None:
        """Acknowledge: the message's effect is committed.

        Raises:
            BrokerError: the connection is unusable.
        """
        self._broker._io.call(functools.partial(self._broker._settle, self, None))

    def reject(self, *, requeue: bool, reason: str | None = None) -> None:
        """Requeue the message, or dead-letter it with ``reason`` in ``x-etl4all-error``.

        Raises:
            BrokerError: the connection is unusable, or the dead letter was not confirmed.
        """
        if requeue:
            self._broker._io.call(functools.partial(self._broker._settle, self, True))
        else:
            self._broker._io.call(
                functools.partial(self._broker._dead_letter, self, reason or "rejected")
            )


class AmqpBroker(Closing):
    """RabbitMQ through one connection owned by a private I/O thread; a context manager."""

    def __init__(
        self,
        *,
        url: str,
        prefix: str = DEFAULTS.queue_prefix,
        prefetch: int = DEFAULTS.prefetch,
        max_deliveries: int = DEFAULTS.max_deliveries,
        connect_timeout: float = DEFAULTS.connect_timeout,
        reconnect_attempts: int = amqp_io.RECONNECT_ATTEMPTS,
    ) -> None:
        """Connect and declare the topology.

        Args:
            url: ``amqp://`` or ``amqps://`` URL with pika's and etl4all's query options.
            prefix: prefix of every queue and exchange name.
            prefetch: unacknowledged messages a consumer may hold.
            max_deliveries: RabbitMQ dead-letters a message returned more often than this.
            connect_timeout: seconds to keep trying the first connection, each attempt
                bounded by what is left of them (later ones are retried
                ``reconnect_attempts`` times).
            reconnect_attempts: retries of a failed connection, unless the URL sets
                ``reconnect_attempts`` (0: fail at once, as ``etl4all check`` does).

        Raises:
            ConfigError: the URL is malformed, or the prefix empty.
            BrokerConfigError: RabbitMQ refuses the credentials, or holds queues of the
                same names with other arguments.
            BrokerError: RabbitMQ is unreachable.
        """
        self.url = urls.redact(url)
        params, reconnect_attempts = amqp_io.parameters(url, reconnect_attempts)
        self.topology = Topology(prefix, max_deliveries)
        """The queue names and arguments this broker declares."""
        params.client_properties = {"connection_name": f"etl4all {prefix}"}
        self._prefetch = prefetch
        self._consumers: dict[str, _Consumer] = {}
        self._publisher: BlockingChannel | None = None
        self._io = amqp_io.IoThread(
            url=self.url,
            params=params,
            reconnect_attempts=reconnect_attempts,
            connect_timeout=connect_timeout,
            name=f"amqp-{prefix}",
            on_connect=self._declare,
            on_tick=self._check_consumers,
            on_drop=self._forget_channels,
            on_shutdown=self._fail_consumers,
        )
        self._admin = amqp_admin.AmqpAdmin(self.url, self.topology, self._io.live, self._publish)
        self._io.start()

    @property
    def reconnects(self) -> int:
        """Connections re-established after a loss (0 when the first one held)."""
        return self._io.reconnects

    # -- the data path: Broker (any thread) ----------------------------------------------------

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish a persistent message to ``queue``; return once RabbitMQ confirmed it.

        Raises:
            BrokerConfigError: unroutable (no such queue), or a header value AMQP cannot carry.
            BrokerError: nacked, or the connection failed.
        """
        properties = amqp_io.message_properties(self.url, headers)
        self._io.call(functools.partial(self._publish, "", queue, body, properties))

    def consume(self, queue: str, *, timeout: float | None = None) -> Iterator[AmqpDelivery]:
        """Deliveries from ``queue`` until ``timeout`` idle seconds pass (None: until close).

        The consumer (manual acks, ``prefetch`` unacked messages) stays registered until
        :meth:`close`, so calling this again resumes without losing prefetched messages.

        Raises:
            BrokerConfigError: the queue does not exist.
            BrokerError: the connection is lost for good.
        """
        consumer = self._io.call(functools.partial(self._ensure_consumer, queue))
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                item = consumer.inbox.get(timeout=wait)
            except queue_mod.Empty:
                if self._io.fatal is not None:
                    raise self._io.fatal from None
                if self._io.closing.is_set():
                    return
                continue
            if isinstance(item, BrokerError):
                if self._io.closing.is_set() and self._io.fatal is None:
                    return
                raise item
            channel, method, properties, body = item
            current = consumer.channel
            if current is None or channel is not current or not current.is_open:
                continue  # from a lost channel: RabbitMQ has requeued it already
            yield AmqpDelivery(self, consumer, channel, method, properties, body)
            deadline = None if timeout is None else time.monotonic() + timeout

    def stop_consuming(self, queue: str) -> None:
        """Cancel the consumer of ``queue``: RabbitMQ sends it nothing more; its channel stays
        open until :meth:`close`, so what it holds can still be settled."""
        self._io.call(functools.partial(self._cancel, queue))

    # -- the operator's path: BrokerAdmin, DeadLetters (any thread; see amqp_admin) ----------

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (passive declare; unacked ones are not counted).

        Raises:
            BrokerConfigError: the queue does not exist.
        """
        return self._io.call(functools.partial(self._admin.queue, queue, "depth"))

    def consumers(self, queue: str) -> int:
        """Consumers attached to ``queue``, any process (passive declare)."""
        return self._io.call(functools.partial(self._admin.queue, queue, "consumers"))

    def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue``; return how many there were."""
        return self._io.call(functools.partial(self._admin.queue, queue, "purge"))

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters ready in ``{prefix}.dead``, in order; they stay there.

        Raises:
            BrokerError: the connection failed (RabbitMQ keeps every dead letter).
        """
        return self._io.call(functools.partial(self._admin.sweep, None))[0]

    def replay(self, select: Select) -> Replayed:
        """Move the ``select``-ed dead letters back to their work queue (confirmed, then acked).

        Raises:
            BrokerConfigError: a work queue is gone (unroutable); that dead letter stays.
            BrokerError: a publish failed; the dead letters not sent back yet stay.
        """
        return self._io.call(functools.partial(self._admin.sweep, select))[1]

    def delete(self) -> None:
        """Delete this prefix's queues and dead-letter exchange (used by tests)."""
        self._io.call(self._delete_topology)

    def close(self) -> None:
        """Cancel consumers (RabbitMQ requeues their unacked messages) and disconnect."""
        self._io.close()

    # -- hooks (run in the I/O thread) ---------------------------------------------------------

    def _declare(self, conn: BlockingConnection) -> None:
        """Declare the topology on a new connection and reopen the consumers."""
        topology = self.topology
        with amqp_errors.mapped(self.url, "declaring the queues"):
            channel = conn.channel()
            channel.exchange_declare(topology.dead_letter_exchange, "fanout", durable=True)
            for spec in topology.queues:
                channel.queue_declare(spec.name, durable=True, arguments=dict(spec.arguments))
            channel.queue_bind(topology.dead, topology.dead_letter_exchange)
            channel.close()
        for consumer in self._consumers.values():
            self._open_consumer(consumer)

    def _forget_channels(self) -> None:
        """The connection was dropped: its channels are gone with it."""
        self._publisher = None
        for consumer in self._consumers.values():
            consumer.channel = None

    def _fail_consumers(self, error: BrokerError) -> None:
        """The I/O thread ends: every waiting consumer gets ``error``."""
        for consumer in self._consumers.values():
            consumer.inbox.put(error)

    # -- commands (run in the I/O thread) ------------------------------------------------------

    def _publish(self, exchange: str, key: str, body: bytes, properties: Any) -> None:
        started = time.monotonic()
        what = f"publishing batch {properties.message_id or '?'} to {key}"
        with amqp_errors.mapped(self.url, what):
            if self._publisher is None or not self._publisher.is_open:
                self._publisher = self._io.live().channel()
                self._publisher.confirm_delivery()
            self._publisher.basic_publish(exchange, key, body, properties, mandatory=True)
        log.debug("published %d bytes to %s in %.3f s", len(body), key, time.monotonic() - started)

    def _ensure_consumer(self, queue: str) -> _Consumer:
        consumer = self._consumers.get(queue)
        if consumer is None:
            consumer = _Consumer(queue, queue_mod.SimpleQueue())
            self._open_consumer(consumer)
            self._consumers[queue] = consumer
        return consumer

    def _open_consumer(self, consumer: _Consumer) -> None:
        with amqp_errors.mapped(self.url, f"consuming from {consumer.queue}"):
            channel = self._io.live().channel()
            channel.basic_qos(prefetch_count=self._prefetch)

            def deliver(ch: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
                consumer.inbox.put((ch, method, properties, body))

            def cancelled(_frame: Any) -> None:
                self._consumers.pop(consumer.queue, None)
                consumer.inbox.put(
                    BrokerConfigError(
                        f"RabbitMQ cancelled the consumer of {consumer.queue}; "
                        "was the queue deleted?"
                    )
                )

            channel.add_on_cancel_callback(cancelled)
            consumer.tag = channel.basic_consume(consumer.queue, deliver, auto_ack=False)
            consumer.channel = channel

    def _cancel(self, queue: str) -> None:
        consumer = self._consumers.pop(queue, None)  # not reopened by _check_consumers
        if consumer is None or consumer.channel is None or not consumer.channel.is_open:
            return
        with amqp_errors.mapped(self.url, f"cancelling the consumer of {queue}"):
            consumer.channel.basic_cancel(consumer.tag)

    def _check_consumers(self) -> None:
        """Reopen a consumer whose channel RabbitMQ closed (e.g. an unknown delivery tag)."""
        for consumer in list(self._consumers.values()):
            if not self._io.connected:
                return
            if consumer.channel is not None and consumer.channel.is_open:
                continue
            log.warning("consumer channel of %s is closed; reopening it", consumer.queue)
            consumer.channel = None
            try:
                self._open_consumer(consumer)
            except BrokerConfigError as exc:  # e.g. the queue is gone: its consumer must know
                self._consumers.pop(consumer.queue, None)
                consumer.inbox.put(exc)
            except BrokerError as exc:
                log.warning("%s; trying again on the next tick", exc)

    def _stale(self, delivery: AmqpDelivery) -> bool:
        current = delivery._consumer.channel
        if current is not None and current is delivery._channel and current.is_open:
            return False
        log.warning(
            "batch %s came on a channel that is gone; RabbitMQ requeued it, it will come again",
            delivery.headers.get(BATCH_ID_HEADER, "?"),
        )
        return True

    def _settle(self, delivery: AmqpDelivery, requeue: bool | None) -> None:
        if self._stale(delivery):
            return
        with amqp_errors.mapped(self.url, f"settling a delivery from {delivery._consumer.queue}"):
            if requeue is None:
                delivery._channel.basic_ack(delivery._tag)
            else:
                delivery._channel.basic_reject(delivery._tag, requeue=requeue)

    def _dead_letter(self, delivery: AmqpDelivery, reason: str) -> None:
        if not self._stale(delivery):
            queue = delivery._consumer.queue
            headers = buried_headers(delivery.headers, queue, urls.redact(reason)[:_REASON_MAX])
            properties = amqp_io.message_properties(self.url, headers)
            self._publish(self.topology.dead_letter_exchange, queue, delivery.body, properties)
            self._settle(delivery, None)

    def _delete_topology(self) -> None:
        with amqp_errors.mapped(self.url, "deleting the queues"):
            for consumer in self._consumers.values():
                if consumer.channel is not None and consumer.channel.is_open:
                    consumer.channel.close()
            self._consumers.clear()
            channel = self._io.live().channel()
            for spec in self.topology.queues:
                channel.queue_delete(spec.name)
            channel.exchange_delete(self.topology.dead_letter_exchange)
            channel.close()
