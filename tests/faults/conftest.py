"""Fixtures of the fault suite: a Redis database of its own, the pipeline, the figures summary.

Every scenario prints one line of figures and keeps it as a user property of its test
(``figures``), which reaches the controller under pytest-xdist too: ``tests/conftest.py``
lists them together at the end of the terminal report ("fault suite figures").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from harness import Pipeline
from service_urls import SERVICE_URLS

LOCK_TTL = 900
"""Seconds a test holds its Redis database at most (the suite's tests take far less)."""


@pytest.fixture
def redis_db(unique: str) -> Iterator[str]:
    """A state URL on a Redis database of this test's own (1-15), flushed after the test.

    A scenario may FLUSHDB it. The database is reserved with a lock key in database 0
    (``etl4all-test-db-lock:N``, SET NX with a TTL) and taken only if it is empty.
    """
    base = urlsplit(SERVICE_URLS["redis"])
    admin = redis.Redis.from_url(base._replace(path="/0", query="").geturl())
    for number in range(15, 0, -1):
        lock = f"etl4all-test-db-lock:{number}"
        if not admin.set(lock, unique, nx=True, ex=LOCK_TTL):
            continue
        db = redis.Redis.from_url(base._replace(path=f"/{number}", query="").geturl())
        if db.dbsize() == 0:
            break
        admin.delete(lock)
        db.close()
    else:
        pytest.fail("no empty Redis database among 1-15 is free for a fault test")
    try:
        yield base._replace(path=f"/{number}", query=f"prefix=etl4all-fault-{unique}:").geturl()
    finally:
        db.flushdb()
        db.close()
        admin.delete(lock)
        admin.close()


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    unique: str,
    mysql_url: str,
    redis_db: str,
    amqp_url: str,
) -> Iterator[Pipeline]:
    """The services pipeline of a fault test (workers not started yet)."""

    def record(line: str) -> None:
        request.node.user_properties.append(("figures", line))

    with Pipeline(
        tmp_path, unique=unique, mysql_url=mysql_url, redis_url=redis_db, amqp_url=amqp_url
    ) as line:
        line.record = record
        yield line
