"""Service markers that cannot be forgotten: derived from the fixtures, enforced on the sockets.

- A test that uses the ``mysql_url``, ``postgres_url``, ``redis_url`` or ``amqp_url``
  fixture (directly or through another fixture) carries the ``mysql``, ``postgres``,
  ``redis`` or ``rabbitmq`` marker, so ``make test-fast`` deselects it.
- A test that opens a TCP connection from the test process to a service's port on loopback
  (the port of its ``ETL4ALL_TEST_<SERVICE>_URL``, or the service's usual one) without that
  service's marker fails, loudly, at teardown, if something listens there: it would error,
  not be deselected, whenever the service is down. (Nothing listening: the test met a closed
  port, which it may be testing.) Connections made by child processes, or by libpq (C, for
  PostgreSQL), are not seen.

A plugin of the root ``conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from service_urls import SERVICE_URLS

FIXTURES = {
    "mysql_url": "mysql",
    "postgres_url": "postgres",
    "postgres_template": "postgres",
    "redis_url": "redis",
    "amqp_url": "rabbitmq",
}
"""Fixture name → the marker of the service it needs."""
USUAL_PORTS = {"mysql": 3306, "postgres": 5432, "redis": 6379, "rabbitmq": 5672}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the service marker of every service fixture an item uses (before ``-m`` selects)."""
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            if name in FIXTURES and not item.get_closest_marker(FIXTURES[name]):
                item.add_marker(FIXTURES[name])


def _ports() -> dict[int, str]:
    """Service port → service, for the configured ports and the usual ones."""
    ports = {port: service for service, port in USUAL_PORTS.items()}
    for service, url in SERVICE_URLS.items():
        ports[urlsplit(url).port or USUAL_PORTS[service]] = service
    return ports


PORTS = _ports()
CONNECT, CONNECT_EX = socket.socket.connect, socket.socket.connect_ex


def _listening(address: tuple[str, int]) -> bool:
    """Whether something accepts connections at ``address`` now."""
    with socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET) as probe:
        probe.settimeout(1)
        return CONNECT_EX(probe, address) == 0


def _loopback(host: object) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def unmarked_service_connections(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail the test if it connected to a service whose marker it lacks."""
    allowed = {service for service in USUAL_PORTS if request.node.get_closest_marker(service)}
    if allowed == set(USUAL_PORTS):
        yield
        return
    seen: dict[tuple[str, int], str] = {}

    def watched(original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            if isinstance(address, tuple) and _loopback(address[0]):
                service = PORTS.get(address[1])
                if service is not None and service not in allowed:
                    seen[address[0], address[1]] = service
            return original(sock, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", watched(CONNECT))
    monkeypatch.setattr(socket.socket, "connect_ex", watched(CONNECT_EX))
    yield
    met = {address: service for address, service in seen.items() if _listening(address)}
    if met:
        services = sorted(set(met.values()))
        where = ", ".join(f"{service} at {host}:{port}" for (host, port), service in met.items())
        pytest.fail(
            f"connected to {where} without the marker "
            f"{', '.join(f'@pytest.mark.{s}' for s in services)}: `make test-fast` runs this "
            "test with the services down",
            pytrace=False,
        )
