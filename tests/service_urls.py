"""Where the test services are: the development machine's, or ETL4ALL_TEST_<SERVICE>_URL.

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
