"""Sources of coordinate files, chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.settings import Settings
    from etl4all.sources.base import Source

SCHEMES = {
    "file": ("etl4all.sources.local:LocalSource", "core"),
    "ftp": ("etl4all.sources.ftp:FtpSource", "ftp"),
}


def from_url(url: str, settings: Settings) -> Source:
    """Build the source for ``url`` (a plain path, ``file://`` or ``ftp://``)."""
    cls = urls.load_class("source", urls.scheme_of(url), SCHEMES)
    return cls(url=url, settings=settings)
