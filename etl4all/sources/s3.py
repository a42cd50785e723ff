"""Coordinate files from an S3 bucket (AWS or any S3-compatible store), through boto3.

URL: ``s3://bucket/prefix?recursive=yes&timeout=30``

- ``prefix`` is a folder of the bucket (``in`` lists the keys under ``in/``; empty: the whole
  bucket); when nothing is under it and an object has exactly that key, that one object is
  taken whatever its name. Percent-encode special characters of the prefix.
- Query options: ``recursive`` (``yes``/``no``, default ``yes``: keys in "sub-folders" of the
  prefix too; ``FileRef.name`` is the key relative to the prefix) and ``timeout`` (seconds,
  default 30, for connecting and for each read).
- Credentials, region and endpoint come the usual AWS way, never from the URL: the variables
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
  ``~/.aws/credentials`` and ``~/.aws/config``, SSO, web identity, the instance role;
  ``AWS_ENDPOINT_URL`` (or ``endpoint_url`` in the config file) names another S3-compatible
  store (MinIO, Ceph, R2, ...), ``AWS_CA_BUNDLE`` its CA.

Constructor option: ``pattern`` (default ``*.txt``; see
:func:`etl4all.sources.settle.name_matches`), which a single-object URL ignores.
Driver: ``boto3`` (``pip install 'etl4all[s3]'``); one client, thread-safe, made on first use.

``FileRef.key`` is ``s3://bucket/key`` (percent-encoded); ``FileRef.etag`` the object's ETag,
which with its size and LastModified (``mtime``) identifies the version: a rewrite within
the second LastModified counts in is new work too. :meth:`S3Source.open` downloads the object
in one streamed GET into a temporary file (bounded memory, one version of the object).
Errors become a retryable :class:`~etl4all.errors.SourceError`, except what retrying cannot
fix (no credentials, credentials refused, no such bucket):
:class:`~etl4all.errors.SourceConfigError`, in one line naming the bucket and the endpoint.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import shutil
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import botocore.config
import botocore.exceptions

from etl4all import urls
from etl4all.errors import ConfigError, SourceConfigError, SourceError
from etl4all.sources.base import Downloading, FileRef, Writes
from etl4all.sources.settle import name_matches

log = logging.getLogger(__name__)

OPTIONS = ("recursive", "timeout")
"""Query options an ``s3://`` URL may carry."""

_COPY_BYTES = 1024 * 1024
"""Bytes copied at a time from the response into the temporary file."""
_FLAGS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
_REFUSED = {
    "AccessDenied": "access denied",
    "InvalidAccessKeyId": "the access key is unknown",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the session token expired",
    "InvalidToken": "the session token is invalid",
}
"""Error codes of refused credentials → what to tell the user."""
_GONE = ("NoSuchKey", "404", "NotFound")


class S3Source(Downloading):
    """Objects under a prefix of an S3 bucket (or one object)."""

    def __init__(self, *, url: str, pattern: str = "*.txt") -> None:
        """Parse and check the URL; the objects taken are those whose name fits ``pattern``.

        The client is made on first use (credentials are looked up then).

        Raises:
            ConfigError: not an ``s3://`` URL, no bucket, credentials or a port in the URL,
                a bad option.
        """
        parsed = urls.parse(url)
        self._safe_url = parsed.shown
        if parsed.scheme != "s3":
            raise ConfigError(f"{self._safe_url}: an S3 source URL starts with s3://")
        if parsed.user is not None or parsed.password is not None or ":" in parsed.netloc:
            raise ConfigError(
                f"{self._safe_url}: an s3:// URL names a bucket only (s3://bucket/prefix); "
                "credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
                "~/.aws, the endpoint of another store from AWS_ENDPOINT_URL"
            )
        if not parsed.netloc:
            raise ConfigError(f"{self._safe_url} names no bucket, e.g. s3://bucket/prefix")
        self._bucket = parsed.netloc  # as written: hostname would lower-case it
        self._prefix = parsed.path.lstrip("/")
        self._folder = self._prefix
        """The prefix as a folder: ``in/`` of ``in``; empty for the whole bucket."""
        if self._folder and not self._folder.endswith("/"):
            self._folder += "/"
        self._recursive, self._timeout = _options(parsed.options, self._safe_url)
        self._pattern = pattern
        self._single = False
        """Whether the last listing found the prefix to be one object."""
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Source({self._key_of(self._prefix)!r})"

    def list_files(self) -> list[FileRef]:
        """Fresh listing of the matching objects, sorted by name.

        Raises:
            SourceConfigError: no credentials, credentials refused, or no such bucket.
            SourceError: the store cannot be reached or failed (retryable).
        """
        with self._errors("listing"):
            client = self._s3()
            log.debug("LIST %s (recursive=%s)", self._safe_url, self._recursive)
            found = list(self._walk(client))
            single = None
            if not found and self._prefix != self._folder:  # "in/day1.txt": one object?
                single = self._head(client)
        self._single = single is not None
        if single is not None:
            return [single]
        refs = sorted(
            (ref for ref in found if name_matches(ref.name, self._pattern)),
            key=lambda ref: ref.name,
        )
        log.debug("listed %d files on %s", len(refs), self._safe_url)
        return refs

    def _fetch(self, ref: FileRef, local: Writes) -> None:
        key = self._prefix if self._single else self._folder + ref.name
        log.debug("GET %s from %s", key, self._safe_url)
        body = self._s3().get_object(Bucket=self._bucket, Key=key)["Body"]
        with contextlib.closing(body):
            shutil.copyfileobj(body, local, _COPY_BYTES)

    def close(self) -> None:
        """Close the client's connections."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _s3(self) -> Any:
        """The client, made on first use from the AWS environment and files.

        Raises:
            SourceConfigError: the AWS configuration is wrong (an unknown profile, a
                malformed region or endpoint).
        """
        with self._lock:
            if self._client is None:
                config = botocore.config.Config(
                    connect_timeout=self._timeout,
                    read_timeout=self._timeout,
                    retries={"mode": "standard", "max_attempts": 3},
                )
                try:
                    self._client = boto3.session.Session().client("s3", config=config)
                except (botocore.exceptions.BotoCoreError, ValueError) as exc:
                    raise SourceConfigError(
                        f"S3 source {self._safe_url}: {urls.redact(_first_line(exc))}; check "
                        "AWS_PROFILE, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL and ~/.aws/config"
                    ) from exc
            return self._client

    def _walk(self, client: Any) -> Iterator[FileRef]:
        """Every object under the folder (one level of it unless recursive)."""
        delimiter = {} if self._recursive else {"Delimiter": "/"}
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._folder, **delimiter
        )
        for page in pages:
            for item in page.get("Contents", ()):
                name = item["Key"][len(self._folder) :]
                if name and not name.endswith("/"):  # a "folder" marker is no file
                    yield self._ref(item["Key"], name, item)

    def _head(self, client: Any) -> FileRef | None:
        """The object whose key is the prefix itself, None when there is none."""
        try:
            head = client.head_object(Bucket=self._bucket, Key=self._prefix)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _GONE:
                return None
            raise
        info = {"Size": head["ContentLength"], **head}
        return self._ref(self._prefix, posixpath.basename(self._prefix), info)

    def _ref(self, key: str, name: str, info: dict[str, Any]) -> FileRef:
        mtime = info["LastModified"].timestamp()
        etag = str(info.get("ETag", ""))
        return FileRef(key=self._key_of(key), name=name, size=info["Size"], mtime=mtime, etag=etag)

    def _key_of(self, key: str) -> str:
        return f"s3://{self._bucket}/{quote(key)}"

    def _endpoint(self) -> str:
        """The store's address, for messages."""
        client = self._client
        return urls.redact(client.meta.endpoint_url) if client is not None else "(no client)"

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate botocore's errors into one-line :class:`SourceError`."""
        where = f"S3 {action} failed on {self._safe_url}"
        try:
            yield
        except botocore.exceptions.NoCredentialsError as exc:
            raise SourceConfigError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials"
            ) from exc
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise SourceConfigError(
                    f"{where}: no bucket {self._bucket!r} at {self._endpoint()}; check the "
                    "bucket in the URL (and AWS_ENDPOINT_URL for a store other than AWS)"
                ) from exc
            if code in _REFUSED:
                raise SourceConfigError(
                    f"{where}: {_REFUSED[code]} ({code}) at {self._endpoint()}; check the AWS "
                    "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws) and the bucket's policy"
                ) from exc
            if code in _GONE:
                raise SourceError(f"{where}: the object is gone ({code})") from exc
            raise SourceError(f"{where}: {code}: {_first_line(exc)}") from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise SourceError(
                f"{where}: {urls.redact(_first_line(exc))}; retry later (is the store at "
                f"{self._endpoint()} up and answering?)"
            ) from exc


def _code(exc: botocore.exceptions.ClientError) -> str:
    """The S3 error code of ``exc`` (``NoSuchBucket``, ``404``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", "")) or "Unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _options(values: dict[str, str], safe_url: str) -> tuple[bool, float]:
    """``(recursive, timeout)`` from the URL's query options."""
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{safe_url}: unknown option {unknown[0]!r}; known: {', '.join(OPTIONS)}")
    flag = values.get("recursive", "yes").lower()
    if flag not in _FLAGS:
        raise ConfigError(f"{safe_url}: recursive must be yes or no, got {flag!r}")
    try:
        timeout = float(values.get("timeout", "30"))
    except ValueError as exc:
        raise ConfigError(f"{safe_url}: timeout must be a number of seconds") from exc
    if not timeout > 0:
        raise ConfigError(f"{safe_url}: timeout must be positive, got {timeout}")
    return _FLAGS[flag], timeout
