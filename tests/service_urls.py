"""Where the test services are, and what the tests may create there: the environment says.

- ``ETL4ALL_TEST_MYSQL_URL`` (``mysql://root@127.0.0.1:3306/``): the server and account; each
  test creates a database ``ETL4ALL_TEST_MYSQL_PREFIX`` + a random suffix and drops it after.
- ``ETL4ALL_TEST_MYSQL_PREFIX`` (``etl4all_test_``): the start of every database name a test
  creates, e.g. a name pattern granted to the test account on a shared server.
- ``ETL4ALL_TEST_REDIS_URL`` (``redis://127.0.0.1:6379/0``): the server and the one database
  every test uses; a test writes only keys under a prefix of its own, and deletes them after.
  No test flushes a database.
- ``ETL4ALL_TEST_RABBITMQ_URL`` (``amqp://guest:guest@127.0.0.1:5672/``): the broker and vhost;
  each test declares queues under a prefix of its own and deletes them.

Read once at import, before the autouse fixture clears ETL4ALL_* from the environment.
"""

from __future__ import annotations

import os

SERVICE_URLS = {
    "mysql": os.environ.get("ETL4ALL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"),
    "postgres": os.environ.get(
        "ETL4ALL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/"
    ),
    "redis": os.environ.get("ETL4ALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("ETL4ALL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
}
MYSQL_PREFIX = os.environ.get("ETL4ALL_TEST_MYSQL_PREFIX", "etl4all_test_")
"""The start of the name of every MySQL database a test creates."""
