"""Re-geocode driver (``etl4all regeocode``): rows already in the warehouse, geocoded again.

Rows chosen by the geocoder that answered them and/or their ``geocode_status`` (``failed``:
the geocode rejects, :data:`FAILED_REASONS`, whose coordinate has no row; it is read back from
the reject's text) are read a page of ``batch_rows`` at a time (by ``id``), geocoded through
the transform stage and loaded back through the load stage, page by page: the address columns
take the new answer, the provenance stays. See docs/commands.md (etl4all regeocode).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import ExitStack

import polars as pl

from etl4all import frames
from etl4all.counts import PROCESS, Counts
from etl4all.errors import ConfigError
from etl4all.geocoders.base import RateReport
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.stages.load import Addresses, Rejects, apply
from etl4all.stages.transform import (
    CallBudget,
    GeocodeStats,
    distinct_keys,
    geocode_frame,
    uncached_keys,
)
from etl4all.warehouse.base import LoadResult, Warehouse, WarehouseBackend

log = logging.getLogger(__name__)

FAILED = "failed"
"""The status that chooses the points no geocoder answered (kept as rejects)."""
STATUSES = ("OK", "ZERO_RESULTS", FAILED)
"""The statuses a selection may name: the ``geocode_status`` values a row can have, and
:data:`FAILED`."""
FAILED_REASONS = ("geocode_failed", "invalid_request", "unexpected_status", "not_geocoded")
"""Reject reasons of points that reached a geocoder and got no address."""

CHECKS = ("state", "warehouse", "lookup", "geocoder")
"""The backends ``etl4all regeocode`` checks at start-up (see :mod:`etl4all.operations.check`)."""
DRY_RUN_CHECKS = ("state", "warehouse")
"""Those ``regeocode --dry-run`` checks: it calls no geocoder and loads nothing."""

_COORDINATES = r"^([-+0-9.eE]+),([-+0-9.eE]+)(?:\s|$)"
"""A geocode reject's text starts with ``latitude,longitude``."""


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which rows to geocode again: by the geocoder that answered them and/or their status.

    Raises:
        ConfigError: neither is given, or a status that is not one of :data:`STATUSES`.
    """

    geocoders: tuple[str, ...] = ()
    """Values of the ``geocoder`` column (``offline``, ``google``, ``nominatim``)."""
    statuses: tuple[str, ...] = ()
    """Values of the ``geocode_status`` column (``OK``, ``ZERO_RESULTS``), or ``failed``."""

    def __post_init__(self) -> None:
        if not (self.geocoders or self.statuses):
            raise ConfigError("choose the rows to re-geocode with --from-geocoder and/or --status")
        if unknown := sorted(set(self.statuses) - set(STATUSES)):
            raise ConfigError(
                f"unknown --status {', '.join(unknown)}: choose among {', '.join(STATUSES)} "
                "(a status no row can have would choose nothing)"
            )

    @property
    def where(self) -> dict[str, tuple[str, ...]] | None:
        """The address table's filter, or None when only failed points are chosen."""
        statuses = tuple(s for s in self.statuses if s != FAILED)
        if self.statuses and not statuses:
            return None
        where = {"geocoder": self.geocoders, "geocode_status": statuses}
        return {column: values for column, values in where.items() if values}


@dataclasses.dataclass(frozen=True)
class Page:
    """Chosen points, as a points frame with the rows' provenance."""

    points: pl.DataFrame
    rows: int = 0
    """Address rows among them."""
    failed: int = 0
    """Failed points among them."""


@dataclasses.dataclass
class Plan:
    """What ``regeocode --dry-run`` found: the chosen rows and the calls they need."""

    rows: int = 0
    failed: int = 0
    distinct: int = 0
    """Distinct coordinates at ``geocode_precision``."""
    cached: int = 0
    calls: int = 0
    """API calls needed: one per distinct uncached coordinate (0 when offline)."""


@dataclasses.dataclass
class RegeocodeReport:
    """What ``regeocode`` did: the chosen rows, and its record of counts."""

    rows: int = 0
    failed: int = 0
    counts: Counts = dataclasses.field(default_factory=PROCESS.child)
    """What geocoding and loading the chosen rows counted."""
    rate: RateReport | None = None
    """The API's adaptive request rate after the last page (None: no API call)."""

    @property
    def geocode(self) -> GeocodeStats:
        return GeocodeStats.read(self.counts, self.rate)

    @property
    def load(self) -> LoadResult:
        kinds = self.counts.by("kind", "rows")
        return LoadResult(kinds["inserted"], kinds["updated"], kinds["unchanged"])

    @property
    def rejects(self) -> int:
        """Chosen points the geocoder could not answer (recorded as rejects)."""
        return self.counts.get("rejects")


def chosen(wh: WarehouseBackend, selection: Selection, page_rows: int) -> Iterator[Page]:
    """The chosen points, page after page: address rows first, then failed points.

    Each page is read when the previous one has been handled, so rows loaded from failed
    points (new ids) are never chosen again as address rows.
    """
    where = selection.where
    after = 0
    while where is not None:
        rows = wh.select("address", where, after_id=after, limit=page_rows)
        if rows.is_empty():
            break
        after = int(rows.get_column("id").max())  # type: ignore[arg-type]
        points = rows.select(
            source=pl.col("source_file"),
            line=pl.col("source_line"),
            latitude="latitude",
            longitude="longitude",
            distance_km="distance_km",
            bearing_deg="bearing_deg",
        )
        yield Page(frames.cast_frame(points, frames.POINTS_SCHEMA), rows=rows.height)
    after = 0
    while FAILED in selection.statuses:
        rejects = wh.select("reject", {"reason": FAILED_REASONS}, after_id=after, limit=page_rows)
        if rejects.is_empty():
            break
        after = int(rejects.get_column("id").max())  # type: ignore[arg-type]
        points = _failed_points(wh, rejects)
        yield Page(points, failed=points.height)


def _failed_points(wh: Warehouse, rejects: pl.DataFrame) -> pl.DataFrame:
    """The points of geocode ``rejects`` whose coordinate has no address row yet."""
    text = pl.col("text").str.extract_groups(_COORDINATES)
    points = rejects.select(
        source=pl.col("source_file"),
        line=pl.col("source_line"),
        latitude=text.struct.field("1").cast(pl.Float64, strict=False),
        longitude=text.struct.field("2").cast(pl.Float64, strict=False),
        distance_km=pl.lit(None, pl.Float64),
        bearing_deg=pl.lit(None, pl.Float64),
    ).drop_nulls(["latitude", "longitude"])
    keys = points.select(frames.coordinate_key()).to_series()
    loaded = wh.existing(keys) if keys.len() else keys
    return frames.cast_frame(points.filter(~keys.is_in(loaded.implode())), frames.POINTS_SCHEMA)


def plan(selection: Selection, settings: Settings) -> Plan:
    """Count the chosen rows and the API calls geocoding them needs, calling no API."""
    config = wiring.transform_config(settings)
    found = Plan()
    keys = []
    with ExitStack() as stack:
        wh = stack.enter_context(wiring.open_warehouse(settings))
        store = stack.enter_context(wiring.open_state(settings))
        for page in chosen(wh, selection, settings.batch_rows):
            found.rows, found.failed = found.rows + page.rows, found.failed + page.failed
            keys.append(distinct_keys(page.points, config.precision))
        distinct = pl.concat(keys).unique() if keys else pl.DataFrame()
        paid = wiring.geocoder_is_paid(settings)
        cached = uncached_keys(distinct, store, config)[0] if paid else distinct.clear()
    found.distinct, found.cached = distinct.height, cached.height
    found.calls = distinct.height - cached.height if paid else 0
    return found


def regeocode(selection: Selection, settings: Settings) -> RegeocodeReport:
    """Geocode the chosen rows again with ``settings.geocoder`` and load the answers back.

    Raises:
        BudgetExceededError: a page needs more calls than ``--max-calls`` leaves (the pages
            before it are committed).
        Etl4allError: a geocoder, state or warehouse failure stopped it the same way.
    """
    report = RegeocodeReport()
    with ExitStack() as stack:
        wh = stack.enter_context(wiring.open_warehouse(settings))
        store = stack.enter_context(wiring.open_state(settings))
        quota = stack.enter_context(wiring.open_quota(settings))
        geocoder = stack.enter_context(wiring.open_geocoder(settings, quota))
        lookup = stack.enter_context(wiring.open_lookup(settings, wh))
        config = wiring.transform_config(settings)
        budget = CallBudget(settings.max_calls)
        for page in chosen(wh, selection, settings.batch_rows):
            page_counts = report.counts.child()
            result = geocode_frame(page.points, geocoder, store, config, budget, counts=page_counts)
            if result.rejects.height:
                apply(Rejects(result.rejects), wh, lookup, page_counts)
            loaded = apply(Addresses(result.addresses), wh, lookup, page_counts).load
            report.rows, report.failed = report.rows + page.rows, report.failed + page.failed
            report.rate = result.stats.rate or report.rate
            log.info(
                "re-geocoded rows=%d failed=%d with=%s updated=%d inserted=%d rejects=%d",
                page.rows,
                page.failed,
                geocoder.name,
                loaded.updated,
                loaded.inserted,
                page_counts.get("rejects"),
            )
    return report
