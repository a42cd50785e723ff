"""etl4all: GPS coordinate files to a warehouse of street addresses.

Importing etl4all loads no driver; ``etl4all.read_warehouse(url)`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "read_warehouse"]


def __getattr__(name: str) -> Any:
    if name == "read_warehouse":
        from etl4all.warehouse.read import read_warehouse

        return read_warehouse
    raise AttributeError(f"module 'etl4all' has no attribute {name!r}")
