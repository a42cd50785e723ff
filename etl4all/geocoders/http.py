"""Request helpers shared by the API geocoders: outcomes, URLs, transport-error mapping.

A provider's request function (see :class:`RequestFn`) returns an :data:`Outcome` (an address
row or a :class:`Failed` key) or raises an ``errors.py`` class; :mod:`etl4all.geocoders.ratelimit`
runs it under the QPS cap, the concurrency limit and the retry policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Iterator
from typing import Any, Protocol

import aiohttp
import yarl

from etl4all import frames, urls
from etl4all.errors import ConfigError, GeocodeTimeoutError, GeocodeUnavailableError


@dataclasses.dataclass(frozen=True)
class Failed:
    """A key the provider refused for good (e.g. ``INVALID_REQUEST``): it becomes a reject."""

    reason: str
    """Short machine-readable reason, e.g. ``invalid_request``."""
    text: str
    """What the provider said."""


Outcome = dict[str, Any] | Failed
"""What a provider's request function returns: an address row (``GEOCODE_SCHEMA`` fields
except ``geocoder`` and ``geocoded_at``) or a :class:`Failed`."""


def empty_row(status: str) -> dict[str, Any]:
    """A row with every address field null and ``geocode_status`` = ``status``."""
    return {**dict.fromkeys(frames.ADDRESS_FIELDS), "geocode_status": status}


class RequestFn(Protocol):
    """A provider's single request: raises retryable errors, or fatal ones to abort the batch."""

    def __call__(
        self, session: aiohttp.ClientSession, latitude: float, longitude: float
    ) -> Awaitable[Outcome]:
        """Geocode one coordinate."""
        ...


@contextlib.contextmanager
def transport_errors(url: str) -> Iterator[None]:
    """Map aiohttp and timeout errors of one request to retryable ``errors.py`` classes.

    The messages name the redacted URL only: never the key, never the driver's own text
    (which may quote the full URL).
    """
    # ``from None``: some aiohttp errors quote the full URL, key included, in their text,
    # and a chained cause would print it in every traceback.
    try:
        yield
    except TimeoutError:
        raise GeocodeTimeoutError(f"request timed out: {urls.redact(url)}") from None
    except aiohttp.ClientError as exc:
        raise GeocodeUnavailableError(
            f"request failed ({type(exc).__name__}): {urls.redact(url)}"
        ) from None


def http_url(value: str, setting: str) -> yarl.URL:
    """Parse and check an http(s) endpoint setting (``setting`` names it in the message).

    Raises:
        ConfigError: not an absolute http(s) URL.
    """
    try:
        url = yarl.URL(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{setting} is not a URL: {urls.redact(str(value))}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{setting} must be an absolute http(s) URL, got {urls.redact(value)}")
    return url


def degrees(value: float) -> str:
    """A coordinate as plain decimal text (never ``1e-05``), at most 8 decimals."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def retry_after_seconds(value: str | None) -> float | None:
    """The ``Retry-After`` header in seconds (only the delta-seconds form), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
