"""Fixtures of the fault suite: the pipeline, the figures summary.

The pipeline keeps its state under a Redis key prefix of its own (the ``redis_url`` fixture),
in the database of ``ETL4ALL_TEST_REDIS_URL``: it never flushes a database.

Every scenario prints one line of figures and keeps it as a user property of its test
(``figures``), which reaches the controller under pytest-xdist too: ``tests/conftest.py``
lists them together at the end of the terminal report ("fault suite figures").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Pipeline


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    unique: str,
    mysql_url: str,
    redis_url: str,
    amqp_url: str,
) -> Iterator[Pipeline]:
    """The services pipeline of a fault test (workers not started yet)."""

    def record(line: str) -> None:
        request.node.user_properties.append(("figures", line))

    with Pipeline(
        tmp_path, unique=unique, mysql_url=mysql_url, redis_url=redis_url, amqp_url=amqp_url
    ) as line:
        line.record = record
        yield line
