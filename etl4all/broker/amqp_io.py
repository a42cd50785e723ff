"""The pika side of the RabbitMQ broker: its I/O thread and URL parameters.

:class:`IoThread` owns the one pika connection of an :class:`~etl4all.broker.amqp.AmqpBroker`
and runs every command on it, since pika services a connection only while one of its methods
runs and one connection serves one thread only; it reconnects with backoff. Its errors are
mapped by :mod:`etl4all.broker.amqp_errors`. See docs/backends.md (Broker, queues and dead
letters).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import logging
import queue as queue_mod
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pika
import pika.exceptions as px
from pika.adapters.blocking_connection import BlockingConnection

from etl4all import retry, tls, urls
from etl4all.broker.amqp_errors import mapped
from etl4all.broker.base import BATCH_ID_HEADER
from etl4all.clock import REAL, Clock
from etl4all.errors import BrokerError, ConfigError

if TYPE_CHECKING:
    import tenacity

log = logging.getLogger(__name__)

T = TypeVar("T")
TICK = 0.2
"""Seconds the I/O thread waits for network events between two looks at its commands."""
DEFAULTS = {
    "heartbeat": "30",
    "blocked_connection_timeout": "60",
    "socket_timeout": "10",
    "stack_timeout": "15",
}
"""pika URL options etl4all sets unless the URL does: seconds for the TCP connection
(``socket_timeout``), for the whole bring-up, TCP, TLS and AMQP handshake
(``stack_timeout``), a heartbeat every ``heartbeat`` / 2 s (a peer silent for ``heartbeat``
+ 5 s is dropped), and for a publish while RabbitMQ blocks publishers
(``blocked_connection_timeout``)."""
MIN_ATTEMPT_SECONDS = 1.0
"""Seconds a first-connection attempt gets at least, however little of the connect timeout
is left (a healthy broker answers in milliseconds)."""
RECONNECT_ATTEMPTS = 8
"""Default of the URL option ``reconnect_attempts``: retries of a failed connection."""


class IoThread:
    """One BlockingConnection, owned by a private daemon thread; its owner supplies the hooks.

    The hooks run in the I/O thread: ``on_connect(conn)`` after every (re)connection (declare
    the topology, reopen consumers), ``on_tick()`` after each round of network events,
    ``on_drop()`` when the connection is forgotten (forget its channels) and
    ``on_shutdown(error)`` as the thread ends, with the error every later call gets.
    """

    def __init__(
        self,
        *,
        url: str,
        params: pika.URLParameters,
        reconnect_attempts: int,
        connect_timeout: float,
        name: str,
        on_connect: Callable[[BlockingConnection], None],
        on_tick: Callable[[], None],
        on_drop: Callable[[], None],
        on_shutdown: Callable[[BrokerError], None],
        clock: Clock = REAL,
    ) -> None:
        """Prepare the thread; :meth:`start` connects. ``url`` must be redacted already;
        the backoffs between connection attempts wait on ``clock``."""
        self.url = url
        self._clock = clock
        self._params = params
        self._reconnect_attempts = reconnect_attempts
        self._connect_timeout = connect_timeout
        self._on_connect = on_connect
        self._on_tick = on_tick
        self._on_drop = on_drop
        self._on_shutdown = on_shutdown
        self._commands: queue_mod.SimpleQueue[
            tuple[Callable[[], Any], concurrent.futures.Future[Any]]
        ]
        self._commands = queue_mod.SimpleQueue()
        self._conn: BlockingConnection | None = None
        self.closing = threading.Event()
        """Set once :meth:`close` was called or the thread ended."""
        self.fatal: BrokerError | None = None
        """The error that ended the thread, if one did."""
        self.reconnects = 0
        """Connections re-established after a loss (0 when the first one held)."""
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread and wait for the first connection.

        Each attempt of the first connection is bounded by what is left of
        ``connect_timeout`` (at least :data:`MIN_ATTEMPT_SECONDS`), so the whole start fails
        within about ``connect_timeout`` when RabbitMQ does not answer.

        Raises:
            BrokerError: the first connection failed for good.
        """
        self._thread.start()
        try:
            self._ready.result()
        except BrokerError:
            self._thread.join()
            raise

    def close(self) -> None:
        """Ask the thread to shut down and wait for it (unless called from it)."""
        self.closing.set()
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def connected(self) -> bool:
        """Whether the thread holds an open connection."""
        return self._conn is not None and self._conn.is_open

    def live(self) -> BlockingConnection:
        """The open connection (I/O thread only).

        Raises:
            BrokerError: not connected.
        """
        if self._conn is None or not self._conn.is_open:
            raise BrokerError(f"RabbitMQ {self.url}: not connected")
        return self._conn

    # -- hand-over to the I/O thread ---------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the I/O thread and return its result (directly when already in it).

        Raises:
            BrokerError: raised by ``fn``, or the thread is closed or ended.
        """
        if threading.current_thread() is self._thread:
            return fn()
        if self.fatal is not None:
            raise self.fatal
        if self.closing.is_set():
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

    def _run(self) -> None:
        ended = False
        try:
            while not self.closing.is_set():
                if not self.connected and not self._reconnect():
                    break
                try:
                    with mapped(self.url, "processing network events"):
                        self.live().process_data_events(time_limit=TICK)
                    self._on_tick()
                    self._run_commands()
                except BrokerError as exc:
                    log.warning("%s", exc)
                    self._drop()
            ended = True
        finally:
            if not ended and self.fatal is None:  # a bug: say so, not "closed"
                self.fatal = BrokerError(
                    f"RabbitMQ {self.url}: the I/O thread failed unexpectedly (a bug: see "
                    f"the traceback of thread {self._thread.name})"
                )
            self._shutdown()

    def _reconnect(self) -> bool:
        """Connect, retrying with full jitter; False once given up (:attr:`fatal`) or closing."""
        first = not self._ready.done()  # the first connection is bounded in time too
        deadline = time.monotonic() + self._connect_timeout if first else None
        retrier = retry.retrying(
            attempts=self._reconnect_attempts + 1,
            max_seconds=self._connect_timeout if first else None,
            stop_event=self.closing,
            before_sleep=self._log_retry,
            clock=self._clock,
        )
        try:
            retrier(self._connect, deadline)
        except BrokerError as exc:
            if not self.closing.is_set():
                self.fatal = exc
            return False
        if self._ready.done():
            self.reconnects += 1
            log.warning("reconnected to RabbitMQ %s", self.url)
        else:
            self._ready.set_result(None)
        return True

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s; reconnecting in %.1f s", error, delay)

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

    def _connect(self, deadline: float | None) -> None:
        """One attempt; by ``deadline`` (a monotonic time) when given."""
        if self.closing.is_set():  # closed during a backoff wait: end the retries
            raise BrokerError(f"RabbitMQ {self.url}: the broker object is closed")
        self._drop()
        params = self._params
        if deadline is not None:
            params = bounded(params, deadline - time.monotonic())
        with mapped(self.url, "connecting", params=params):
            self._conn = BlockingConnection(params)
        self._on_connect(self._conn)

    def _drop(self) -> None:
        """Forget a lost connection; its channels' deliveries have been requeued."""
        conn, self._conn = self._conn, None
        self._on_drop()
        if conn is not None and conn.is_open:
            with contextlib.suppress(px.AMQPError):
                conn.close()

    def _shutdown(self) -> None:
        self.closing.set()
        error = self.fatal or BrokerError(f"RabbitMQ {self.url}: the broker object is closed")
        if not self._ready.done():
            self._ready.set_exception(error)
        self._on_shutdown(error)
        self._drop()
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue_mod.Empty:
                break
            if future.set_running_or_notify_cancel():
                future.set_exception(error)


def bounded(params: pika.ConnectionParameters, seconds: float) -> pika.ConnectionParameters:
    """A copy of ``params`` whose connection attempt takes at most ``seconds`` (at least
    :data:`MIN_ATTEMPT_SECONDS`): ``stack_timeout`` and ``socket_timeout`` lowered to it."""
    limit = max(seconds, MIN_ATTEMPT_SECONDS)
    capped = copy.copy(params)
    capped.stack_timeout = min(params.stack_timeout or limit, limit)
    capped.socket_timeout = min(params.socket_timeout or limit, capped.stack_timeout)
    return capped


def message_properties(url: str, headers: dict[str, Any]) -> Any:
    """Persistent message properties; encoded once here so bad header values fail early.

    Raises:
        BrokerError: a header value AMQP cannot carry.
    """
    properties = pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=dict(headers),
        message_id=str(headers.get(BATCH_ID_HEADER) or "") or None,
    )
    with mapped(url, "encoding the message headers"):
        properties.encode()
    return properties


def parameters(
    url: str, reconnect_attempts: int = RECONNECT_ATTEMPTS
) -> tuple[pika.URLParameters, int]:
    """pika parameters with etl4all's defaults, and the URL's ``reconnect_attempts``
    (``reconnect_attempts`` when it sets none).

    ``amqps://`` is TLS with the options of :mod:`etl4all.tls` (``ssl_ca``, ``ssl_verify``,
    ``ssl_cert``, ``ssl_key``): the broker's certificate and host name are verified (against
    the system's CAs unless ``ssl_ca`` names a file) unless ``ssl_verify=false``.

    Raises:
        ConfigError: a malformed URL or option, a TLS option on an ``amqp://`` URL, or a TLS
            file that cannot be loaded.
    """
    parsed = urls.parse(url)
    if parsed.scheme not in ("amqp", "amqps") or not parsed.host:
        raise ConfigError(f"broker URL {parsed.shown}: expected amqp://user:pass@host:5672/")
    options = {**DEFAULTS, **{k: v for k, v in parsed.query if v}}
    tls_options = {k: options.pop(k) for k in tls.OPTIONS if k in options}
    if tls_options and parsed.scheme == "amqp":
        given = ", ".join(sorted(tls_options))
        raise ConfigError(f"broker URL {parsed.shown}: {given} need an amqps:// URL (TLS)")
    attempts = options.pop("reconnect_attempts", str(reconnect_attempts))
    try:
        params = pika.URLParameters(parsed.with_query(options.items()))
        reconnect_attempts = int(attempts)
    except ValueError as exc:
        raise ConfigError(f"broker URL {urls.redact(url)}: {urls.redact(str(exc))}") from exc
    if reconnect_attempts < 0:
        raise ConfigError(f"broker URL {urls.redact(url)}: reconnect_attempts must be >= 0")
    if parsed.scheme == "amqps":
        shown = f"broker URL {parsed.shown}"
        context = tls.Tls.from_options(tls_options, shown).context(shown)
        params.ssl_options = pika.SSLOptions(context, server_hostname=parsed.host)
    return params, reconnect_attempts
