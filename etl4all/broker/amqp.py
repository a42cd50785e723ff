"""RabbitMQ broker (``amqp://``) on pika's BlockingConnection.

URL: ``amqp://user:password@host:5672/vhost?heartbeat=30`` (``amqps://`` for TLS). Every pika
URL option works (``heartbeat``, ``blocked_connection_timeout``, ``socket_timeout``,
``connection_attempts``, ...); defaults: heartbeat 30 s, blocked_connection_timeout 60 s (a
publish during a memory/disk alarm fails instead of hanging). etl4all's own option
``reconnect_attempts`` (default 8) bounds the reconnection loop. Settings read:
``queue_prefix``, ``prefetch``, ``max_deliveries``. Driver: pika
(``pip install 'etl4all[rabbitmq]'``).

Topology, declared at start and again after every reconnection:

- ``{prefix}.points`` and ``{prefix}.addresses``: durable quorum queues with
  ``x-dead-letter-exchange={prefix}.dlx`` and ``x-delivery-limit=max_deliveries``;
- ``{prefix}.dlx``: a durable fanout exchange bound to the quorum queue ``{prefix}.dead``.

Publishing: persistent messages, publisher confirms and ``mandatory=True``; ``publish``
returns only once RabbitMQ confirmed, and an unroutable or nacked message raises
:class:`~etl4all.errors.BrokerError`.

Heartbeats: pika services a BlockingConnection only while one of its methods runs, so a
long handler would let the heartbeat lapse. The connection therefore lives in a private I/O
thread that calls ``process_data_events`` every 0.2 s; ``publish``, ``ack``, ``reject`` and
``depth`` are handed to that thread (woken with ``add_callback_threadsafe``) and wait for
its result, so the handler runs in the caller's thread as long as it likes. One connection
is used by one thread only, as pika requires. Run one broker per consumer thread.

Dead letters: RabbitMQ's own dead-lettering (``basic.reject`` without requeue) cannot add a
header, so ``reject(requeue=False, reason=...)`` republishes the message (confirmed) to
``{prefix}.dlx`` with ``x-etl4all-error`` (the reason) and ``x-etl4all-queue``, then acks the
original. A crash between the two leaves a duplicate dead letter, never a lost one. The
queue's own delivery limit is the backstop for consumers that crash before they can reject:
RabbitMQ dead-letters a message returned more than ``x-delivery-limit`` times (so after
``max_deliveries + 1`` deliveries, one more than the worker allows itself, so the worker's
dead letter with a reason normally comes first); those carry
``x-first-death-reason: delivery_limit``. On RabbitMQ 3.x every return counts, including
prefetched messages requeued when a consumer stops: keep ``prefetch`` small.

Connection loss: the I/O thread reconnects with exponential backoff, redeclares the topology
and its consumers. Deliveries from the lost channel were requeued by RabbitMQ; acking them
is a logged no-op. Refused credentials and topology conflicts raise a non-retryable
BrokerError at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import queue as queue_mod
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika
import pika.exceptions as px
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from etl4all import urls
from etl4all.broker import queues
from etl4all.broker.memory import ERROR_HEADER, QUEUE_HEADER
from etl4all.closing import Closing
from etl4all.errors import BrokerError, ConfigError
from etl4all.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
_TICK = 0.2
"""Seconds the I/O thread waits for network events between two looks at its commands."""
_DEFAULTS = {"heartbeat": "30", "blocked_connection_timeout": "60", "socket_timeout": "10"}
_REASON_MAX = 4000
"""Longest reason text stored in a dead letter's header."""


@contextlib.contextmanager
def _mapped(url: str, action: str) -> Iterator[None]:
    """Translate every pika error raised inside into a BrokerError (the only place that does).

    Refused credentials or permissions, topology conflicts and unroutable messages are not
    retryable: retrying cannot fix them, and the worker stops instead of looping.
    """
    try:
        yield
    except px.AMQPError as exc:
        retryable = True
        hint = "retrying may help"
        if isinstance(exc, px.ProbableAuthenticationError | px.AuthenticationError):
            retryable, hint = False, "check the user and password of the broker URL"
        elif isinstance(exc, px.ProbableAccessDeniedError):
            retryable, hint = False, "check the vhost and the user's permissions"
        elif isinstance(exc, px.ConnectionClosedByBroker | px.ChannelClosedByBroker):
            code = exc.reply_code
            if code in (403, 530):
                retryable, hint = False, "check the user's permissions"
            elif code == 404:
                retryable, hint = False, "the queue or exchange does not exist"
            elif code == 406:
                retryable = False
                hint = "a queue exists with other arguments; delete it or change queue_prefix"
        elif isinstance(exc, px.UnsupportedAMQPFieldException):
            retryable, hint = False, "header values must be str, int, bool, bytes or None"
            exc = px.UnsupportedAMQPFieldException(repr(exc.args[-1])[:100])
        elif isinstance(exc, px.UnroutableError):
            retryable, hint = False, "no queue is bound for it; was the queue deleted?"
        error = BrokerError(
            f"RabbitMQ {urls.redact(url)}: {action} failed: {type(exc).__name__}: "
            f"{urls.redact(str(exc))}; {hint}"
        )
        error.retryable = retryable
        raise error from exc


@dataclasses.dataclass(eq=False)
class _Consumer:
    queue: str
    inbox: queue_mod.SimpleQueue[tuple[BlockingChannel, Any, Any, bytes] | BrokerError]
    channel: BlockingChannel | None = None


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
        self._broker._call(functools.partial(self._broker._settle, self, None))

    def reject(self, *, requeue: bool, reason: str | None = None) -> None:
        """Requeue the message, or dead-letter it with ``reason`` in ``x-etl4all-error``.

        Raises:
            BrokerError: the connection is unusable, or the dead letter was not confirmed.
        """
        if requeue:
            self._broker._call(functools.partial(self._broker._settle, self, True))
        else:
            self._broker._call(
                functools.partial(self._broker._dead_letter, self, reason or "rejected")
            )


class AmqpBroker(Closing):
    """RabbitMQ through one connection owned by a private I/O thread; a context manager."""

    def __init__(self, *, url: str, settings: Settings) -> None:
        """Connect and declare the topology.

        Raises:
            ConfigError: the URL is malformed.
            BrokerError: RabbitMQ is unreachable, refuses the credentials, or holds
                queues of the same names with other arguments.
        """
        self.url = urls.redact(url)
        self._params, self._reconnect_attempts = _parameters(url)
        self._prefix = settings.queue_prefix
        self._params.client_properties = {"connection_name": f"etl4all {self._prefix}"}
        self._prefetch = settings.prefetch
        self._dlx = f"{self._prefix}.dlx"
        self._dead = queues.name(self._prefix, queues.DEAD)
        work = {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self._dlx,
            "x-delivery-limit": settings.max_deliveries,
        }
        self._queues = {
            queues.name(self._prefix, queues.POINTS): work,
            queues.name(self._prefix, queues.ADDRESSES): work,
            self._dead: {"x-queue-type": "quorum"},
        }
        self._commands: queue_mod.SimpleQueue[
            tuple[Callable[[], Any], concurrent.futures.Future[Any]]
        ]
        self._commands = queue_mod.SimpleQueue()
        self._consumers: dict[str, _Consumer] = {}
        self._conn: BlockingConnection | None = None
        self._publisher: BlockingChannel | None = None
        self._closing = threading.Event()
        self._fatal: BrokerError | None = None
        self.reconnects = 0
        """Connections re-established after a loss (0 when the first one held)."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"amqp-{self._prefix}", daemon=True
        )
        self._thread.start()
        try:
            ready.result()
        except BrokerError:
            self._thread.join()
            raise

    # -- public API (any thread) ------------------------------------------------------------

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish a persistent message to ``queue``; return once RabbitMQ confirmed it.

        Raises:
            BrokerError: unroutable (no such queue), nacked, or the connection failed.
        """
        properties = _properties(self.url, headers)
        self._call(functools.partial(self._publish, "", queue, body, properties))

    def consume(self, queue: str, *, timeout: float | None = None) -> Iterator[AmqpDelivery]:
        """Deliveries from ``queue`` until ``timeout`` idle seconds pass (None: until close).

        The consumer (manual acks, ``prefetch`` unacked messages) stays registered until
        :meth:`close`, so calling this again resumes without losing prefetched messages.

        Raises:
            BrokerError: the queue does not exist, or the connection is lost for good.
        """
        consumer = self._call(functools.partial(self._ensure_consumer, queue))
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                item = consumer.inbox.get(timeout=wait)
            except queue_mod.Empty:
                if self._fatal is not None:
                    raise self._fatal from None
                if self._closing.is_set():
                    return
                continue
            if isinstance(item, BrokerError):
                if self._closing.is_set() and self._fatal is None:
                    return
                raise item
            channel, method, properties, body = item
            current = consumer.channel
            if current is None or channel is not current or not current.is_open:
                continue  # from a lost channel: RabbitMQ has requeued it already
            yield AmqpDelivery(self, consumer, channel, method, properties, body)
            deadline = None if timeout is None else time.monotonic() + timeout

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (passive declare; unacked ones are not counted).

        Raises:
            BrokerError: the queue does not exist.
        """
        return self._call(functools.partial(self._with_channel, queue, "depth"))

    def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue``; return how many there were."""
        return self._call(functools.partial(self._with_channel, queue, "purge"))

    def delete(self) -> None:
        """Delete this prefix's queues and dead-letter exchange (tests, ``etl4all reset``)."""
        self._call(self._delete_topology)

    def close(self) -> None:
        """Cancel consumers (RabbitMQ requeues their unacked messages) and disconnect."""
        self._closing.set()
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join()

    # -- hand-over to the I/O thread ---------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return fn()
        if self._fatal is not None:
            raise self._fatal
        if self._closing.is_set():
            raise BrokerError(f"RabbitMQ {self.url}: the broker object is closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._commands.put((fn, future))
        self._wake()
        while True:
            try:
                return future.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if not self._thread.is_alive() and not future.done():
                    raise BrokerError(f"RabbitMQ {self.url}: the I/O thread ended") from None

    def _wake(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(px.AMQPError):
                conn.add_callback_threadsafe(lambda: None)

    # -- I/O thread ----------------------------------------------------------------------------

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        failures = 0
        try:
            while not self._closing.is_set():
                if self._conn is None or not self._conn.is_open:
                    try:
                        self._connect()
                    except BrokerError as exc:
                        failures += 1
                        if not exc.retryable or failures > self._reconnect_attempts:
                            self._fatal = exc
                            return
                        delay = min(30.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0)
                        log.warning("%s; reconnecting in %.1f s", exc, delay)
                        self._closing.wait(delay)
                        continue
                    if ready.done():
                        self.reconnects += 1
                        log.warning("reconnected to RabbitMQ %s", self.url)
                    else:
                        ready.set_result(None)
                    failures = 0
                try:
                    with _mapped(self.url, "processing network events"):
                        self._live().process_data_events(time_limit=_TICK)
                    self._check_consumers()
                    self._run_commands()
                except BrokerError as exc:
                    log.warning("%s", exc)
                    failures += 1
                    self._drop()
        finally:
            self._shutdown(ready)

    def _run_commands(self) -> None:
        while self._conn is not None and self._conn.is_open:
            try:
                fn, future = self._commands.get_nowait()
            except queue_mod.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            settled = False
            try:
                future.set_result(fn())
                settled = True
            except BrokerError as exc:
                future.set_exception(exc)
                settled = True
            finally:
                if not settled:  # a bug: the exception ends the I/O thread; tell the caller
                    future.set_exception(BrokerError(f"RabbitMQ {self.url}: I/O thread failed"))

    def _connect(self) -> None:
        self._drop()
        with _mapped(self.url, "connecting"):
            self._conn = BlockingConnection(self._params)
        with _mapped(self.url, "declaring the queues"):
            channel = self._conn.channel()
            channel.exchange_declare(self._dlx, "fanout", durable=True)
            for name, arguments in self._queues.items():
                channel.queue_declare(name, durable=True, arguments=arguments)
            channel.queue_bind(self._dead, self._dlx)
            channel.close()
        for consumer in self._consumers.values():
            self._open_consumer(consumer)

    def _drop(self) -> None:
        """Forget a lost connection; its channels' deliveries have been requeued."""
        conn, self._conn, self._publisher = self._conn, None, None
        for consumer in self._consumers.values():
            consumer.channel = None
        if conn is not None and conn.is_open:
            with contextlib.suppress(px.AMQPError):
                conn.close()

    def _shutdown(self, ready: concurrent.futures.Future[None]) -> None:
        self._closing.set()
        error = self._fatal or BrokerError(f"RabbitMQ {self.url}: the broker object is closed")
        if not ready.done():
            ready.set_exception(error)
        for consumer in self._consumers.values():
            consumer.inbox.put(error)
        self._drop()
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue_mod.Empty:
                break
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    # -- commands (run in the I/O thread) ------------------------------------------------------

    def _live(self) -> BlockingConnection:
        if self._conn is None or not self._conn.is_open:
            raise BrokerError(f"RabbitMQ {self.url}: not connected")
        return self._conn

    def _publish(self, exchange: str, key: str, body: bytes, properties: Any) -> None:
        started = time.monotonic()
        with _mapped(self.url, f"publishing batch {properties.message_id or '?'} to {key}"):
            if self._publisher is None or not self._publisher.is_open:
                self._publisher = self._live().channel()
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
        with _mapped(self.url, f"consuming from {consumer.queue}"):
            channel = self._live().channel()
            channel.basic_qos(prefetch_count=self._prefetch)

            def deliver(ch: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
                consumer.inbox.put((ch, method, properties, body))

            def cancelled(_frame: Any) -> None:
                self._consumers.pop(consumer.queue, None)
                error = BrokerError(f"RabbitMQ cancelled the consumer of {consumer.queue}")
                error.retryable = False  # the queue was deleted
                consumer.inbox.put(error)

            channel.add_on_cancel_callback(cancelled)
            channel.basic_consume(consumer.queue, deliver, auto_ack=False)
            consumer.channel = channel

    def _check_consumers(self) -> None:
        """Reopen a consumer whose channel RabbitMQ closed (e.g. an unknown delivery tag)."""
        for consumer in list(self._consumers.values()):
            if self._conn is None or not self._conn.is_open:
                return
            if consumer.channel is not None and consumer.channel.is_open:
                continue
            log.warning("consumer channel of %s is closed; reopening it", consumer.queue)
            consumer.channel = None
            try:
                self._open_consumer(consumer)
            except BrokerError as exc:
                if not exc.retryable:
                    self._consumers.pop(consumer.queue, None)
                    consumer.inbox.put(exc)

    def _stale(self, delivery: AmqpDelivery) -> bool:
        current = delivery._consumer.channel
        if current is not None and current is delivery._channel and current.is_open:
            return False
        log.warning(
            "batch %s came on a channel that is gone; RabbitMQ requeued it, it will come again",
            delivery.headers.get("batch_id", "?"),
        )
        return True

    def _settle(self, delivery: AmqpDelivery, requeue: bool | None) -> None:
        if self._stale(delivery):
            return
        with _mapped(self.url, f"settling a delivery from {delivery._consumer.queue}"):
            if requeue is None:
                delivery._channel.basic_ack(delivery._tag)
            else:
                delivery._channel.basic_reject(delivery._tag, requeue=requeue)

    def _dead_letter(self, delivery: AmqpDelivery, reason: str) -> None:
        if self._stale(delivery):
            return
        kept = {k: v for k, v in delivery.headers.items() if k != "x-delivery-count"}
        headers = {
            **kept,
            ERROR_HEADER: urls.redact(reason)[:_REASON_MAX],
            QUEUE_HEADER: delivery._consumer.queue,
        }
        properties = _properties(self.url, headers)
        self._publish(self._dlx, delivery._consumer.queue, delivery.body, properties)
        self._settle(delivery, None)

    def _with_channel(self, queue: str, action: str) -> int:
        with _mapped(self.url, f"{action} of {queue}"):
            channel = self._live().channel()
            try:
                if action == "purge":
                    return int(channel.queue_purge(queue).method.message_count)
                return int(channel.queue_declare(queue, passive=True).method.message_count)
            finally:
                if channel.is_open:
                    channel.close()

    def _delete_topology(self) -> None:
        with _mapped(self.url, "deleting the queues"):
            for consumer in self._consumers.values():
                if consumer.channel is not None and consumer.channel.is_open:
                    consumer.channel.close()
            self._consumers.clear()
            channel = self._live().channel()
            for name in self._queues:
                channel.queue_delete(name)
            channel.exchange_delete(self._dlx)
            channel.close()


def _properties(url: str, headers: dict[str, Any]) -> Any:
    """Persistent message properties; encoded once here so bad header values fail early.

    Raises:
        BrokerError: a header value AMQP cannot carry.
    """
    properties = pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=dict(headers),
        message_id=str(headers.get("batch_id") or "") or None,
    )
    with _mapped(url, "encoding the message headers"):
        properties.encode()
    return properties


def _parameters(url: str) -> tuple[pika.URLParameters, int]:
    """pika parameters with etl4all's defaults, and the reconnect attempts.

    Raises:
        ConfigError: a malformed URL or option.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ConfigError(f"broker URL {urls.redact(url)}: expected amqp://user:pass@host:5672/")
    options = {**_DEFAULTS, **dict(parse_qsl(parts.query))}
    attempts = options.pop("reconnect_attempts", "8")
    try:
        params = pika.URLParameters(urlunsplit(parts._replace(query=urlencode(options))))
        return params, int(attempts)
    except ValueError as exc:
        raise ConfigError(f"broker URL {urls.redact(url)}: {urls.redact(str(exc))}") from exc
