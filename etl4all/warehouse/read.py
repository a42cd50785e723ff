"""``etl4all.read_warehouse(url)``: the address table of a warehouse as a Polars frame.

The backend is resolved through :data:`etl4all.warehouse.SCHEMES` and reads with its own
``read_url``: DuckDB opens the file read-only; MySQL reads through connectorx (the
``mysql`` extra), which streams straight into Arrow, or PyMySQL over TLS.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import polars as pl

from etl4all import urls
from etl4all.warehouse import SCHEMES

if TYPE_CHECKING:
    from etl4all.warehouse.base import WarehouseAdmin

log = logging.getLogger(__name__)


def read_warehouse(url: str) -> pl.DataFrame:
    """The address table of the warehouse at ``url``, ordered by ``id``.

    Every backend gives the same shape: ``latitude``/``longitude`` as Float64 and the
    timestamps as ``Datetime("us", "UTC")``. For MySQL the coordinates come through
    connectorx, which reads DECIMAL as float64: compare them rounded to 8 decimals or via
    :func:`etl4all.frames.coordinate_key`, never with ``==`` on the raw floats.

    Raises:
        ConfigError: an unsupported URL, or no such table.
        MissingDependencyError: the backend's driver is not installed.
        WarehouseError: the database could not be read.
    """
    cls: type[WarehouseAdmin] = urls.load_class("warehouse", urls.scheme_of(url), SCHEMES)
    log.debug("reading the address table of %s", urls.redact(url))
    return cls.read_url(url)
