"""The MongoDB lookup over TLS: pymongo's own options, passed through; a refused certificate
is a ConfigError in one line. No MongoDB runs here, so the server is a TLS listener with the
test CA's certificate (:class:`private_tls.TlsProxy`): the handshake, all that the client
checks, fails before any MongoDB message, and pymongo gives up after
``serverSelectionTimeoutMS``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from private_tls import TlsFiles, TlsProxy

from etl4all.errors import ConfigError
from etl4all.lookup.mongodb import MongoLookup


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def listener(files: TlsFiles) -> Iterator[TlsProxy]:
    with TlsProxy(files.server_context(), ("127.0.0.1", 9)) as proxy:
        yield proxy


@pytest.mark.parametrize(
    ("host", "ca", "said"),
    [
        ("127.0.0.1", "other_ca", "127.0.0.1:{port} refused: unknown CA or self-signed"),
        ("localhost", "ca", "localhost:{port} refused: host name mismatch"),
    ],
)
def test_a_refused_certificate_is_a_configuration_fault_in_one_line(
    listener: TlsProxy, files: TlsFiles, host: str, ca: str, said: str
) -> None:
    url = (
        f"mongodb://etl:s3cret@{host}:{listener.port}/etl4all?tls=true"
        f"&tlsCAFile={getattr(files, ca)}&serverSelectionTimeoutMS=500"
    )
    with MongoLookup(url=url) as lookup, pytest.raises(ConfigError) as caught:
        lookup.ping()
    message = str(caught.value)
    assert said.format(port=listener.port) in message and "\n" not in message
    assert "s3cret" not in message


def test_turning_the_check_off_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="etl4all.lookup.mongodb"):
        MongoLookup(url="mongodb://h/etl4all?tls=true&tlsAllowInvalidCertificates=true").close()
    assert "tlsAllowInvalidCertificates: TLS without checking" in caplog.text
