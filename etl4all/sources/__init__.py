"""Sources of coordinate files, chosen by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl4all import urls

if TYPE_CHECKING:
    from etl4all.sources.base import Source

SCHEMES = {
    "file": ("etl4all.sources.local:LocalSource", "core"),
    "ftp": ("etl4all.sources.ftp:FtpSource", "ftp"),
    "ftps": ("etl4all.sources.ftps:FtpsSource", "ftp"),
    "sftp": ("etl4all.sources.sftp:SftpSource", "sftp"),
    "s3": ("etl4all.sources.s3:S3Source", "s3"),
}


def from_url(url: str, **options: Any) -> Source:
    """The source of ``url`` (a plain path, or a URL whose scheme is in :data:`SCHEMES`) with
    ``pattern`` (file name glob); see :func:`etl4all.urls.build`."""
    return urls.build("source", url, SCHEMES, **options)
