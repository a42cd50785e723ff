"""Sources of coordinate files, chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.sources.base import Source

SCHEMES = {
    "file": ("etl4all.sources.local:LocalSource", "core"),
    "ftp": ("etl4all.sources.ftp:FtpSource", "ftp"),
}


def from_url(url: str, **options: Any) -> Source:
    """Build the source for ``url`` (a plain path, ``file://`` or ``ftp://``).

    ``options`` go to the source's constructor (``pattern``, the file name pattern).

    Raises:
        UnknownSchemeError: no source serves the URL's scheme.
        MissingDependencyError: the source's driver is not installed.
        ConfigError: the source refused the URL or an option.
    """
    cls = urls.load_class("source", urls.scheme_of(url), SCHEMES)
    return cls(url=url, **options)
