"""etl4all.tls: the URL options, the client context, and real refused handshakes in one line."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

import pytest
from private_tls import SERVER_HOST, TlsFiles, TlsProxy

from etl4all import tls
from etl4all.errors import ConfigError, StoreError

SHOWN = "redis://:***@h/0"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


def handshake(settings: tls.Tls, port: int, host: str = SERVER_HOST) -> None:
    """A client's TLS handshake with ``settings`` to the server on ``port``."""
    context = settings.context(SHOWN)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=host),
    ):
        pass


def refusal(settings: tls.Tls, port: int, host: str = SERVER_HOST) -> str:
    """The one line a driver's error around a refused handshake becomes."""
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        handshake(settings, port, host)
    try:  # as drivers do: their own error, the ssl one as its cause
        raise StoreError("Error 1 connecting") from caught.value
    except StoreError as wrapped:
        error = tls.refused(wrapped)
    assert error is caught.value
    return tls.describe(error, host, port)


def test_the_options_default_to_verified_tls_on_the_system_store() -> None:
    assert tls.Tls.from_options({}, SHOWN) == tls.Tls(None, True, None, None)
    context = tls.Tls().context(SHOWN)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_verification_off_only_when_asked_and_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="etl4all.tls"):
        settings = tls.Tls.from_options({"ssl_verify": "false"}, SHOWN)
    assert not settings.verify
    assert "ssl_verify=false" in caplog.text and SHOWN in caplog.text
    context = settings.context(SHOWN)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"ssl_verify": "maybe"}, "ssl_verify must be true or false"),
        ({"ssl_key": "/k.pem"}, "ssl_key needs ssl_cert"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        tls.Tls.from_options(options, SHOWN)


def test_files_that_cannot_be_loaded_are_named_without_their_content(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ssl_ca /nowhere/ca.pem: No such file"):
        tls.Tls(ca="/nowhere/ca.pem").context(SHOWN)
    garbage = tmp_path / "key.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nSECRET-MATERIAL\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not a usable PEM file") as caught:
        tls.Tls(cert=str(garbage), key=str(garbage)).context(SHOWN)
    assert "SECRET-MATERIAL" not in str(caught.value) and str(garbage) in str(caught.value)


def test_a_client_certificate_is_loaded(files: TlsFiles) -> None:
    tls.Tls(ca=str(files.ca), cert=str(files.client_cert)).context(SHOWN)


def test_the_right_ca_passes(files: TlsFiles) -> None:
    with TlsProxy(files.server_context(), ("127.0.0.1", 9)) as server:
        handshake(tls.Tls(ca=str(files.ca)), server.port)


def test_an_unknown_ca_is_said_in_one_line(files: TlsFiles) -> None:
    with TlsProxy(files.server_context(), ("127.0.0.1", 9)) as server:
        for settings in (tls.Tls(ca=str(files.other_ca)), tls.Tls()):  # the system's store too
            line = refusal(settings, server.port)
            assert line.startswith(f"TLS certificate of {SERVER_HOST}:{server.port} refused: ")
            assert "unknown CA or self-signed" in line and "ssl_ca=" in line and "\n" not in line


def test_a_host_name_mismatch_is_said(files: TlsFiles) -> None:
    with TlsProxy(files.server_context(), ("127.0.0.1", 9)) as server:
        line = refusal(tls.Tls(ca=str(files.ca)), server.port, host="localhost")
    assert "host name mismatch" in line and "localhost" in line


def test_an_expired_certificate_is_said(files: TlsFiles) -> None:
    with TlsProxy(files.server_context(expired=True), ("127.0.0.1", 9)) as server:
        line = refusal(tls.Tls(ca=str(files.ca)), server.port)
    assert "certificate expired" in line and "renew" in line


def test_verification_off_accepts_any_certificate(files: TlsFiles) -> None:
    with TlsProxy(files.server_context(), ("127.0.0.1", 9)) as server:
        handshake(tls.Tls(verify=False), server.port, host="localhost")


def test_other_errors_hold_no_refusal() -> None:
    assert tls.refused(StoreError("Connection refused")) is None
