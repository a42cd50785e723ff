"""RabbitMQ errors as etl4all's: :func:`mapped` is the one place that turns pika errors into
``BrokerError`` (an outage: retry) or ``BrokerConfigError`` (refused credentials, a refused
certificate, a permission or a queue that retrying cannot fix), each in one line naming the
broker and what failed."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator

import pika
import pika.exceptions as px
from pika.adapters.utils import connection_workflow as cw

from etl4all import tls, urls
from etl4all.errors import BrokerConfigError, BrokerError, Etl4allError
from etl4all.timeouts import timed_out

_REPLY_HINTS = {
    403: "check the user's permissions",
    530: "check the user's permissions",
    404: "the queue or exchange does not exist",
    406: "a queue exists with other arguments; delete it or change queue_prefix",
}
"""AMQP reply codes of a broker-closed connection or channel that retrying cannot fix."""


@contextlib.contextmanager
def mapped(
    url: str, action: str, *, params: pika.ConnectionParameters | None = None
) -> Iterator[None]:
    """Translate every pika error raised inside (the only place that does).

    Refused credentials or permissions, a refused TLS certificate, topology conflicts, bad
    header values and unroutable messages raise :class:`BrokerConfigError`: retrying cannot
    fix them, and the worker stops instead of looping. Every other pika error raises a
    retryable :class:`BrokerError`; a connection that timed out (``params``: the attempt's)
    names the host, port and phase.
    """
    try:
        yield
    except ssl.SSLCertVerificationError as exc:  # pika lets it through as it is
        raise _refused(url, action, exc, params) from exc
    except (px.AMQPError, cw.AMQPConnectorException) as exc:
        if refused := tls.refused(exc):
            raise _refused(url, action, refused, params) from exc
        if params is not None and (said := _timed_out(exc, params)):
            raise BrokerError(
                f"RabbitMQ {urls.redact(url)}: {action} failed: {said}; retrying may help"
            ) from exc
        if isinstance(exc, cw.AMQPConnectorException):  # aborted, wrong state: pika's own
            raise BrokerError(
                f"RabbitMQ {urls.redact(url)}: {action} failed: {type(exc).__name__}; "
                "retrying may help"
            ) from exc
        hint = _config_hint(exc)
        detail = _cause(exc)
        if isinstance(exc, px.IncompatibleProtocolError | px.StreamLostError):
            # what pika calls a connection cut before or after its handshake
            detail = f"the connection was cut ({detail or 'end of stream'})"
        if isinstance(exc, px.UnsupportedAMQPFieldException):
            detail = repr(exc.args[-1])[:100]  # pika's text holds the whole header table
        cls = BrokerError if hint is None else BrokerConfigError
        named = "" if isinstance(exc, px.IncompatibleProtocolError) else f"{type(exc).__name__}: "
        raise cls(
            f"RabbitMQ {urls.redact(url)}: {action} failed: {named}"
            f"{urls.redact(detail)}; {hint or 'retrying may help'}"
        ) from exc
    except Etl4allError:  # already ours (a BrokerConfigError is a ValueError too)
        raise
    except socket.gaierror as exc:  # pika lets a failed name lookup through as it is
        raise BrokerConfigError(
            f"RabbitMQ {urls.redact(url)}: {action} failed: cannot resolve the host "
            f"({exc.strerror}); check the broker URL"
        ) from exc
    except (OSError, ValueError) as exc:  # pika lets socket errors through while connecting
        # ("Expected connected socket, but getpeername() failed" is a ValueError)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BrokerError(
            f"RabbitMQ {urls.redact(url)}: {action} failed: {urls.redact(detail)}; "
            "retrying may help"
        ) from exc


def _refused(
    url: str,
    action: str,
    error: ssl.SSLCertVerificationError,
    params: pika.ConnectionParameters | None,
) -> BrokerConfigError:
    """The error of a broker certificate the client refused (retrying cannot help)."""
    parsed = urls.parse(url)
    host, port = (params.host, params.port) if params else (parsed.host, parsed.port)
    said = tls.describe(error, host, port)
    return BrokerConfigError(f"RabbitMQ {parsed.shown}: {action} failed: {said}")


def _timed_out(exc: BaseException, params: pika.ConnectionParameters) -> str | None:
    """What timed out while connecting with ``params`` (host, port, phase), or None."""
    if isinstance(exc, cw.AMQPConnectorStackTimeout):
        what = "did not complete the connection and the AMQP handshake"
        return timed_out(params.host, params.port, what, params.stack_timeout, "stack_timeout")
    inner = exc.args[0] if isinstance(exc, px.AMQPConnectionError) and exc.args else None
    if isinstance(inner, cw.AMQPConnectorSocketConnectError) and isinstance(
        inner.exception, TimeoutError
    ):
        what = "did not accept the TCP connection"
        return timed_out(params.host, params.port, what, params.socket_timeout, "socket_timeout")
    return None


def _cause(exc: BaseException) -> str:
    """The text of ``exc``, or of the error it wraps: pika's connection errors are often
    empty and carry the socket error (``Connection refused``) as an argument or as
    ``.exception`` / ``.exceptions``."""
    for _ in range(5):
        if str(exc) and not (exc.args and isinstance(exc.args[0], BaseException)):
            break
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        inner = inner or getattr(exc, "exception", None)
        inner = inner or (getattr(exc, "exceptions", None) or [None])[-1]
        if not isinstance(inner, BaseException):
            return str(exc) or type(exc).__name__
        exc = inner
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text or type(exc).__name__


def _config_hint(exc: px.AMQPError) -> str | None:
    """What to fix when retrying cannot help with ``exc``; None when it may."""
    if isinstance(exc, px.ProbableAuthenticationError | px.AuthenticationError):
        return "check the user and password of the broker URL"
    if isinstance(exc, px.ProbableAccessDeniedError):
        return "check the vhost and the user's permissions"
    if isinstance(exc, px.ConnectionClosedByBroker | px.ChannelClosedByBroker):
        return _REPLY_HINTS.get(exc.reply_code)
    if isinstance(exc, px.UnsupportedAMQPFieldException):
        return "header values must be str, int, bool, bytes or None"
    if isinstance(exc, px.UnroutableError):
        return "no queue is bound for it; was the queue deleted?"
    return None
