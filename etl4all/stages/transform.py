"""Transform stage: points → addresses.

Coordinates are rounded to ``geocode_precision`` and deduplicated, the cache answers what it
knows (paid geocoders only), then the warehouse answers what it stores of the rest (an
answer already paid for, which a flushed or lost cache forgot: it goes back to the cache),
the geocoder is asked for what is left, and the results are joined back onto every point. A
coordinate is paid for once, ever, within the cache TTL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import polars as pl

from etl4all import frames
from etl4all.counts import PROCESS, Counts
from etl4all.errors import BudgetExceededError, BudgetTooSmallError
from etl4all.geocoders.base import Geocoder, RateReport, ResultSink
from etl4all.state.base import GeocodeCache
from etl4all.state.payloads import CACHE_SCHEMA

log = logging.getLogger(__name__)

_KEYS = ["lat_key", "lon_key"]


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """What the transform stage needs to know (built from ``Settings`` by the wiring)."""

    precision: int
    """Coordinates are rounded to this many decimals before dedup, cache and API."""
    cache_scope: str
    """Cache namespace: provider, language and precision (``google:pt-BR:6``)."""
    cache_ttl_seconds: float
    """How long a paid answer stays in the cache."""


class AnswerStore(Protocol):
    """Where answers already paid for are kept for good: the warehouse."""

    def answers(self, keys: pl.Series, geocoder: str, since: dt.datetime) -> pl.DataFrame:
        """``key`` and ``frames.GEOCODE_SCHEMA`` of the canonical ``keys`` it holds, answered
        by ``geocoder`` at ``since`` or later."""
        ...


class CallBudget:
    """API calls a command may still make (``--max-calls``), shared by its threads.

    Counted in coordinates that need the API, after dedup and cache; retries are not counted.
    ``limit=None`` means no budget. A batch needing more than what is left is refused before
    any of its calls (exit 1: a rerun starts with a whole budget and finds the answers paid so
    far in the cache); one needing more than the whole budget can never be geocoded with it
    (exit 2).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    def spend(self, calls: int, geocoder: str) -> None:
        """Take ``calls`` from the budget before making them.

        Raises:
            BudgetTooSmallError: ``calls`` is more than the whole budget: a batch no run with
                this budget can ever geocode (its calls are refused before any is made and
                cached, so a rerun needs them all again).
            BudgetExceededError: fewer than ``calls`` are left; nothing is taken.
        """
        with self._lock:
            if self.limit is not None and calls > self.limit:
                raise BudgetTooSmallError(
                    f"a batch needs {calls} {geocoder} API calls (after dedup and cache), more "
                    f"than the whole --max-calls {self.limit}: no run with this budget can "
                    f"geocode it; raise --max-calls to at least {calls}, or lower --batch-size "
                    "so that each batch needs fewer calls (each batch paid for is cached, so "
                    "reruns then go on)"
                )
            if self.limit is not None and self.spent + calls > self.limit:
                raise BudgetExceededError(
                    f"the next batch needs {calls} {geocoder} API calls but --max-calls "
                    f"{self.limit} leaves {self.limit - self.spent} "
                    f"({self.spent} spent so far; "
                    f"{'nothing was geocoded' if not self.spent else 'what was paid is cached'}); "
                    "raise --max-calls, or check first with etl4all estimate"
                )
            self.spent += calls


@dataclasses.dataclass
class GeocodeStats:
    """Counts of the transform stage: of a batch, or summed over a record (:meth:`read`)."""

    points: int = 0
    distinct: int = 0
    cache_hits: int = 0
    geocoded: int = 0
    calls: int = 0
    retries: int = 0
    zero_results: int = 0
    failed: int = 0
    api_seconds: float = 0.0
    rate_limited: int = 0
    """API answers OVER_QUERY_LIMIT or HTTP 429."""
    rate: RateReport | None = None
    """The API's adaptive request rate after the last batch (None: no API call)."""

    @classmethod
    def read(cls, counts: Counts, rate: RateReport | None = None) -> GeocodeStats:
        """What the batches geocoded into ``counts`` (:func:`geocode_frame`) add up to."""
        return cls(
            points=counts.get("points", stage="transform"),
            distinct=counts.get("geocode_distinct"),
            cache_hits=counts.get("geocoder_cache_hits"),
            geocoded=counts.get("geocoded"),
            calls=counts.get("geocoder_calls"),
            retries=counts.get("geocoder_retries"),
            zero_results=counts.get("zero_results"),
            failed=counts.get("geocode_failed"),
            api_seconds=counts.total("api_seconds"),
            rate_limited=counts.get("rate_limited"),
            rate=rate,
        )

    @property
    def qps(self) -> float:
        """Achieved API requests per second while calling the API."""
        return self.calls / self.api_seconds if self.api_seconds else 0.0


@dataclasses.dataclass
class Transformed:
    """Addresses of a batch, its points that could not be geocoded, and counters."""

    addresses: pl.DataFrame
    rejects: pl.DataFrame
    stats: GeocodeStats


def with_keys(points: pl.DataFrame, precision: int) -> pl.DataFrame:
    """``points`` plus ``lat_key``/``lon_key``: the coordinate at ``precision`` as integers."""
    return points.with_columns(
        lat_key=frames.scaled_key(pl.col("latitude"), precision),
        lon_key=frames.scaled_key(pl.col("longitude"), precision),
    )


def distinct_keys(points: pl.DataFrame, precision: int) -> pl.DataFrame:
    """The distinct coordinates of ``points`` at ``precision``, as integer keys."""
    return with_keys(points, precision).select(_KEYS).unique(maintain_order=True)


def uncached_keys(
    keys: pl.DataFrame, cache: GeocodeCache, config: TransformConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split distinct ``keys`` into (cached results, keys the geocoder must be asked)."""
    if keys.is_empty():
        return frames.empty(CACHE_SCHEMA), keys
    cached = cache.cache_get(config.cache_scope, keys)
    return cached, keys.join(cached.select(_KEYS), on=_KEYS, how="anti")


def stored_answers(
    keyed: pl.DataFrame, stored: AnswerStore, geocoder: str, config: TransformConfig
) -> pl.DataFrame:
    """Answers (``CACHE_SCHEMA``, one per key) ``stored`` keeps for the points ``keyed`` (with
    their keys at the transform's precision), given by ``geocoder`` within the cache TTL."""
    exact = keyed.select(_KEYS, key=frames.coordinate_key()).unique(subset="key")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=config.cache_ttl_seconds)
    found = stored.answers(exact.get_column("key"), geocoder, since)
    if found.is_empty():
        return frames.empty(CACHE_SCHEMA)
    log.info("%d coordinates answered by the warehouse, not the API", found.height)
    answers = exact.join(found, on="key").unique(subset=_KEYS, keep="first").drop("key")
    return frames.cast_frame(answers, CACHE_SCHEMA)


def geocode_frame(
    points: pl.DataFrame,
    geocoder: Geocoder,
    cache: GeocodeCache,
    config: TransformConfig,
    budget: CallBudget | None = None,
    on_answers: Callable[[int], None] | None = None,
    stored: AnswerStore | None = None,
    counts: Counts = PROCESS,
) -> Transformed:
    """Reverse-geocode ``points`` (points schema) into addresses.

    Args:
        budget: the command's ``--max-calls`` budget (paid geocoders only), spent before
            any call of this batch is made.
        stored: asked for the answers the cache lacks before the geocoder is (paid
            geocoders only); what it has goes back to the cache.
        on_answers: told how many more coordinates the geocoder answered, as they arrive
            (for a progress display).
        counts: the record the batch's counts add to (``Transformed.stats`` reads them).

    Paid answers go to the cache as they arrive (not at the end), so a batch that fails or
    is interrupted halfway has paid for what it got once: its retry asks only for the rest.
    Rows whose coordinate is not a real one (NaN, infinite, out of range) are rejected
    (``invalid_coordinate``); the rest of the batch goes on.

    Raises:
        BudgetExceededError: the batch needs more calls than the budget has left.
        GeocodeUnavailableError: the provider stayed unavailable; retry the batch later.
        GeocodeAuthError, GeocodeQuotaError: the provider refused; nothing was returned.
    """
    points, invalid = frames.split_invalid_coordinates(points)
    if invalid.height:
        log.warning("%d points have an invalid coordinate; rejected", invalid.height)
    precision = config.precision
    keyed = with_keys(points, precision)
    keys = keyed.select(_KEYS).unique(maintain_order=True)
    if geocoder.paid:  # the offline geocoder is faster than any cache
        cached, todo = uncached_keys(keys, cache, config)
        if stored is not None and todo.height:
            kept = stored_answers(keyed.join(todo, on=_KEYS), stored, geocoder.name, config)
            if kept.height:
                cache.cache_put(config.cache_scope, kept, config.cache_ttl_seconds)
                cached = pl.concat([cached, kept])
                todo = todo.join(kept.select(_KEYS), on=_KEYS, how="anti")
    else:
        cached, todo = frames.empty(CACHE_SCHEMA), keys
    if geocoder.paid and budget is not None and todo.height:
        budget.spend(todo.height, geocoder.name)
    batch = counts.child()
    fresh, failed, rate = _ask(
        geocoder, todo, precision, batch, _sink(geocoder, cache, config, on_answers)
    )
    results = pl.concat([cached, fresh], how="vertical")
    addresses = keyed.join(results, on=_KEYS, how="inner", maintain_order="left")
    rejects = pl.concat([invalid, _rejects(keyed, results, failed)])
    batch.add("points", points.height, stage="transform")
    batch.add("geocode_distinct", keys.height)
    batch.add("geocoder_cache_hits", cached.height, geocoder=geocoder.name)
    batch.add("geocoded", results.height)
    batch.add("zero_results", int(results.get_column("geocode_status").eq("ZERO_RESULTS").sum()))
    for reason, n in rejects.get_column("reason").value_counts().rows():
        batch.add("rejects", n, stage="transform", reason=reason)
    return Transformed(
        addresses=frames.cast_frame(addresses, frames.ADDRESSES_SCHEMA),
        rejects=rejects,
        stats=GeocodeStats.read(batch, rate),
    )


def _sink(
    geocoder: Geocoder,
    cache: GeocodeCache,
    config: TransformConfig,
    on_answers: Callable[[int], None] | None,
) -> ResultSink:
    """A geocoder's ``on_results``: paid answers go to the cache as they arrive."""

    def put(rows: pl.DataFrame) -> None:
        if geocoder.paid:
            keyed = with_keys(rows, config.precision).drop("latitude", "longitude")
            cache.cache_put(
                config.cache_scope,
                frames.cast_frame(keyed, CACHE_SCHEMA),
                config.cache_ttl_seconds,
            )
        if on_answers is not None:
            on_answers(rows.height)

    return put


def _ask(
    geocoder: Geocoder,
    todo: pl.DataFrame,
    precision: int,
    batch: Counts,
    on_results: ResultSink,
) -> tuple[pl.DataFrame, pl.DataFrame, RateReport | None]:
    """Geocode ``todo`` keys, counting the calls in ``batch``: (results as ``CACHE_SCHEMA``,
    failed keys with reason/text, the API's rate after them)."""
    scale = 10**precision
    if todo.is_empty():
        return (
            frames.empty(CACHE_SCHEMA),
            todo.with_columns(reason=pl.lit(None, pl.String), text=pl.lit(None, pl.String)),
            None,
        )
    started = time.perf_counter()
    answer = geocoder.reverse(
        todo.select(latitude=pl.col("lat_key") / scale, longitude=pl.col("lon_key") / scale),
        on_results,
    )
    batch.add("geocoder_calls", answer.calls, geocoder=geocoder.name)
    batch.add("geocoder_retries", answer.retries, geocoder=geocoder.name)
    batch.add("api_seconds", answer.seconds)
    batch.add("geocode_failed", answer.failed.height)
    batch.add("rate_limited", answer.rate_limited)
    if geocoder.paid:
        seconds = time.perf_counter() - started
        log.info(
            "geocoded %d coordinates calls=%d retries=%d seconds=%.2f",
            todo.height,
            batch.get("geocoder_calls"),
            batch.get("geocoder_retries"),
            seconds,
            extra={"stage": "transform", "rows": todo.height, "seconds": round(seconds, 3)},
        )
    fresh = with_keys(answer.addresses, precision).drop("latitude", "longitude")
    failed = with_keys(answer.failed, precision).drop("latitude", "longitude")
    return frames.cast_frame(fresh, CACHE_SCHEMA), failed, answer.rate


def _rejects(keyed: pl.DataFrame, results: pl.DataFrame, failed: pl.DataFrame) -> pl.DataFrame:
    """Points whose coordinate the geocoder could not answer, as rejects."""
    missing = keyed.join(results.select(_KEYS), on=_KEYS, how="anti")
    if missing.is_empty():
        return frames.empty(frames.REJECTS_SCHEMA)
    if failed.height:
        log.warning("%d coordinates could not be geocoded", failed.height)
    rejects = missing.join(failed, on=_KEYS, how="left").select(
        "source",
        "line",
        reason=pl.col("reason").fill_null("not_geocoded"),
        reasons=pl.col("reason").fill_null("not_geocoded"),
        text=frames.reject_text(
            pl.format("{},{} {}", "latitude", "longitude", pl.col("text").fill_null(""))
        ),
        detail=pl.lit(None),
    )
    return frames.cast_frame(rejects, frames.REJECTS_SCHEMA)
