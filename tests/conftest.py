"""Shared fixtures: a clean environment, and the loopback services with unique names.

Service URLs default to the development machine's services and can be overridden with
``ETL4ALL_TEST_<SERVICE>_URL`` (see ``service_urls.py`` for every variable). A service that is
down fails its tests; it never skips them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_urls import MYSQL_PREFIX, SERVICE_URLS

pytest_plugins = ["service_marks"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's ETL4ALL_* variables or Google key."""
    for name in list(os.environ):
        if name.startswith("ETL4ALL_") or name == "GOOGLE_MAPS_API_KEY":
            monkeypatch.delenv(name)


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder where this user cannot create a file: a 0555 one, or, for root (whom modes do
    not stop), ``/sys``, where no one can."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for queue, key and database names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def mysql_url(unique: str) -> Iterator[str]:
    """URL of a fresh MySQL database, dropped after the test."""
    base = SERVICE_URLS["mysql"].rstrip("/")
    name = f"{MYSQL_PREFIX}{unique}"
    conn = _mysql_connect(base)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"{base}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def _mysql_connect(base: str):  # type: ignore[no-untyped-def]
    from urllib.parse import urlsplit

    import pymysql

    parts = urlsplit(base)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )


@pytest.fixture
def postgres_url(unique: str) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test (with its sessions)."""
    with _postgres_database(f"etl4all_test_{unique}") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database with what ``init-db`` makes (PostGIS too, the slow part), once per test
    process: the template of :func:`postgres_ready_url`; dropped at the end."""
    from etl4all.warehouse.postgres import PostgresWarehouse

    name = f"etl4all_test_template_{uuid.uuid4().hex[:10]}"
    with _postgres_database(name) as url:
        with PostgresWarehouse(url=url) as warehouse:
            warehouse.init()
        yield name


@pytest.fixture
def postgres_ready_url(postgres_template: str, unique: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL database as ``init-db`` leaves it, dropped after the test."""
    with _postgres_database(f"etl4all_test_{unique}", template=postgres_template) as url:
        yield url


@contextlib.contextmanager
def _postgres_database(name: str, template: str | None = None) -> Iterator[str]:
    """Create database ``name`` (a copy of ``template``), yield its URL, drop it."""
    import psycopg

    base = SERVICE_URLS["postgres"].rstrip("/")
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield f"{base}/{name}"
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(unique: str) -> Iterator[str]:
    """A Redis URL whose keys carry a unique prefix; the keys are deleted after the test."""
    import redis

    base = SERVICE_URLS["redis"]
    client = redis.Redis.from_url(base)
    client.ping()
    prefix = f"etl4all-test-{unique}:"
    try:
        yield f"{base}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def amqp_url() -> str:
    """The RabbitMQ URL (tests pass a unique queue prefix of their own)."""
    return SERVICE_URLS["rabbitmq"]


_FAULT_GROUPS = {"test_outages": "faults-a", "test_kill": "faults-a", "test_replicas": "faults-a"}
"""The fault scenarios' two queues (the rest are ``faults-b``), about equally long."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With ``-n`` (pytest-xdist), the fault scenarios run in two queues, each one after
    another on one worker: they wait out real outages, so the other workers run the rest of
    the suite meanwhile."""
    for item in items:
        if item.get_closest_marker("faults"):
            group = _FAULT_GROUPS.get(item.path.stem, "faults-b")
            item.add_marker(pytest.mark.xdist_group(group))


_FIGURES: list[tuple[str, str]] = []
"""(test name, figures line) of the fault scenarios that ran (see tests/faults/conftest.py)."""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        name = report.nodeid.rpartition("::")[2]
        _FIGURES.extend((name, value) for key, value in report.user_properties if key == "figures")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the figures of the fault scenarios that ran."""
    if _FIGURES:
        terminalreporter.section("fault suite figures")
        for name, line in _FIGURES:
            terminalreporter.write_line(f"{name}: {line}")
