"""Service markers that cannot be forgotten: derived from the fixtures, enforced on the sockets.

- A test that uses the ``mysql_url``, ``redis_url`` or ``amqp_url`` fixture (directly or
  through another fixture) carries the ``mysql``, ``redis`` or ``rabbitmq`` marker, so
  ``make test-fast`` (``-m "not mysql and not redis and not rabbitmq"``) deselects it.
- A test that opens a TCP connection from the test process to a service's port on loopback
  (the port of its ``ETL4ALL_TEST_<SERVICE>_URL``, or the service's usual one) without that
  service's marker fails, loudly, at teardown: it would error, not be deselected, whenever
  the service is down. Connections made by child processes are not seen.

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

FIXTURES = {"mysql_url": "mysql", "redis_url": "redis", "amqp_url": "rabbitmq"}
"""Fixture name → the marker of the service it needs."""
USUAL_PORTS = {"mysql": 3306, "redis": 6379, "rabbitmq": 5672}


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
    seen: list[str] = []

    def watched(original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            if isinstance(address, tuple) and _loopback(address[0]):
                service = PORTS.get(address[1])
                if service is not None and service not in allowed:
                    seen.append(f"{service} at {address[0]}:{address[1]}")
            return original(sock, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", watched(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", watched(socket.socket.connect_ex))
    yield
    if seen:
        services = sorted({where.split()[0] for where in seen})
        pytest.fail(
            f"connected to {', '.join(sorted(set(seen)))} without the marker "
            f"{', '.join(f'@pytest.mark.{s}' for s in services)}: `make test-fast` runs this "
            "test with the services down",
            pytrace=False,
        )
