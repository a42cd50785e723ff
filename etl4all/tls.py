"""TLS to the service backends: the URL options, the client context, refused certificates.

Every TLS URL (``rediss://``, ``amqps://``, ``mysql://…?ssl=true``) takes the same options
(:class:`Tls`): ``ssl_ca`` (a PEM file of the CAs to trust; default: the system's store),
``ssl_verify`` (``true`` by default; ``false`` encrypts without checking who answers, with
a warning), ``ssl_cert`` and ``ssl_key`` (a client certificate and its key, PEM). With
verification on, the server's certificate must chain to a trusted CA, be in its validity
period and name the URL's host.

A certificate the client refuses is a configuration fault, not an outage: :func:`refused`
finds the :class:`ssl.SSLCertVerificationError` inside a driver's error, and :func:`describe`
says in one line whose certificate failed and why (unknown CA or self-signed, host name
mismatch, expired), so the backend raises its ConfigError instead of retrying. A driver that
keeps only the text (pymongo) has :func:`refused_in_text`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import ssl
from collections.abc import Mapping

from etl4all.errors import ConfigError

log = logging.getLogger(__name__)

OPTIONS = ("ssl_ca", "ssl_verify", "ssl_cert", "ssl_key")
"""The URL options of :class:`Tls`, the same for every backend."""
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

_REASONS = (
    (
        ("issuer", "self-signed", "self signed", "unable to verify"),
        "unknown CA or self-signed certificate",
        "give the file of the CA that signed it with {ca}=/path/ca.pem in the URL",
    ),
    (("mismatch",), "host name mismatch", "connect with a host name the certificate names"),
    (("expired",), "certificate expired", "renew the server's certificate"),
    (
        ("not yet valid",),
        "certificate not yet valid",
        "check the server's and this machine's clocks",
    ),
)
"""Words of OpenSSL's (and Python's host name) verification messages: what failed, what to
do. OpenSSL's texts are stable (``X509_verify_cert_error_string``); 1.1 and 3 differ only
in "self signed" and "self-signed"."""
_IN_TEXT = re.compile(
    r"([^\s,]+): \[SSL: CERTIFICATE_VERIFY_FAILED\] certificate verify failed: ([^(]+)"
)


@dataclasses.dataclass(frozen=True)
class Tls:
    """The TLS options of a URL; :meth:`context` is the client's SSL context."""

    ca: str | None = None
    """A PEM file of the CAs to trust; None: the system's store."""
    verify: bool = True
    """Check the server's certificate and host name (``ssl_verify=false`` turns it off)."""
    cert: str | None = None
    """A client certificate (PEM), for servers that ask for one."""
    key: str | None = None
    """The client certificate's private key (PEM), when not in ``cert``'s file."""

    @classmethod
    def from_options(cls, options: Mapping[str, str], shown: str) -> Tls:
        """The TLS options among a URL's ``options`` (others ignored); ``shown``: the redacted
        URL, for messages. Warns when verification is turned off.

        Raises:
            ConfigError: ``ssl_verify`` is not a boolean, or ``ssl_key`` comes without
                ``ssl_cert``.
        """
        verify = _BOOLEANS.get(options.get("ssl_verify", "true").lower())
        if verify is None:
            raise ConfigError(f"{shown}: ssl_verify must be true or false")
        if options.get("ssl_key") and not options.get("ssl_cert"):
            raise ConfigError(f"{shown}: ssl_key needs ssl_cert, the client certificate")
        if not verify:
            log.warning(
                "%s: ssl_verify=false: TLS without checking the server's certificate; the "
                "connection is encrypted but anyone on the way may answer for the server",
                shown,
            )
        return cls(
            ca=options.get("ssl_ca") or None,
            verify=verify,
            cert=options.get("ssl_cert") or None,
            key=options.get("ssl_key") or None,
        )

    def context(self, shown: str) -> ssl.SSLContext:
        """A client context: the CA file or the system's store, the client certificate if any.

        Raises:
            ConfigError: a file cannot be read or holds no certificate or key (the message
                names the option and the path, never the file's content).
        """
        try:
            context = ssl.create_default_context(cafile=self.ca)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{shown}: ssl_ca {self.ca}: {_reason(exc)}") from None
        if self.cert:
            try:
                context.load_cert_chain(self.cert, self.key)
            except (OSError, ValueError) as exc:
                files = " and ".join(dict.fromkeys(f for f in (self.cert, self.key) if f))
                raise ConfigError(f"{shown}: ssl_cert/ssl_key {files}: {_reason(exc)}") from None
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _reason(exc: BaseException) -> str:
    """What went wrong loading a file: the OS's or OpenSSL's reason, not the file's text."""
    if isinstance(exc, ssl.SSLError):
        return f"not a usable PEM file ({exc.reason or exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def refused(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error inside ``exc`` (its causes, contexts and the
    errors drivers keep as arguments or attributes), or None."""
    todo: list[object] = [exc]
    seen: set[int] = set()
    while todo:
        error = todo.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            return error
        todo += [error.__cause__, error.__context__, *error.args]
        todo += [getattr(error, name, None) for name in ("exception", "original_exception")]
        todo += list(getattr(error, "exceptions", None) or ())
    return None


def describe(error: ssl.SSLCertVerificationError, host: str | None, port: int | None) -> str:
    """One line: whose certificate was refused, why, and what to do."""
    return _line(f"{host}:{port}", error.verify_message or str(error), "ssl_ca")


def refused_in_text(text: str, ca_option: str) -> str | None:
    """:func:`describe`'s line for the first refused certificate a driver's message quotes
    (``host:port: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: why``), or
    None; ``ca_option``: the driver's URL option naming a CA file."""
    found = _IN_TEXT.search(text)
    return _line(found[1], found[2].strip(), ca_option) if found else None


def _line(address: str, message: str, ca_option: str) -> str:
    reason, hint = message, "check the server's certificate"
    for words, what, todo in _REASONS:
        if any(word in message.lower() for word in words):
            reason, hint = what, todo
            break
    return (
        f"TLS certificate of {address} refused: {reason} ({message}); {hint.format(ca=ca_option)}"
    )
