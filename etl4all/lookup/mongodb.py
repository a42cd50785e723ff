"""MongoDB lookup: a collection of the canonical coordinate keys already loaded.

URL: ``mongodb://user:password@host:27017/database?collection=address_keys`` (database
defaults to ``etl4all``). ``collection`` (default ``address_keys``) is ours; every other
query option goes to pymongo unchanged (``replicaSet``, ``tls``, ``authSource``, ...;
``serverSelectionTimeoutMS`` defaults to 10000, ``connectTimeoutMS`` to 10000 and
``socketTimeoutMS`` to 60000: a server that goes silent mid-query is an outage, not a hang).
TLS: pymongo's own options (``tls=true``, ``tlsCAFile=/path/ca.pem``, ``tlsCertificateKeyFile``;
``mongodb+srv://`` turns it on), the certificate and host name verified against the system's
store or ``tlsCAFile``; ``tlsInsecure``, ``tlsAllowInvalidCertificates`` or
``tlsAllowInvalidHostnames`` turn that off, with a warning. A certificate refused is a
:class:`~etl4all.errors.ConfigError` naming the host and why, once pymongo gives up
(``serverSelectionTimeoutMS``). Driver: pymongo (``pip install 'etl4all[mongodb]'``).

Each key is a document ``{"_id": "-30.04982864,-51.20150245"}``: the ``_id`` index makes
``present`` one ``$in`` query per chunk and makes ``add`` idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl
import pymongo
import pymongo.errors
from pymongo import uri_parser

from etl4all import tls, urls
from etl4all.closing import Closing
from etl4all.errors import ConfigError, MissingDependencyError, StoreError

log = logging.getLogger(__name__)

CHUNK = 10_000
"""Keys per query or insert: far below MongoDB's 16 MiB document and message limits."""

DEFAULT_DATABASE = "etl4all"
DEFAULT_COLLECTION = "address_keys"
_TIMEOUTS = {
    "serverSelectionTimeoutMS": "10000",
    "connectTimeoutMS": "10000",
    "socketTimeoutMS": "60000",
}
"""Driver timeouts (milliseconds) a URL does not set: see the module docstring."""
_DUPLICATE_KEY = 11000
_AUTH_FAILED = {13, 18}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")
_INSECURE = {"tlsinsecure", "tlsallowinvalidcertificates", "tlsallowinvalidhostnames"}
"""pymongo's options that turn off the check of the server's certificate or host name."""


@contextlib.contextmanager
def _errors(what: str, url: str) -> Iterator[None]:
    """Translate pymongo errors raised by ``what`` on ``url`` into etl4all errors."""
    try:
        yield
    except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI) as exc:
        raise ConfigError(f"{what} on {url}: {exc}") from exc
    except pymongo.errors.OperationFailure as exc:
        if exc.code in _AUTH_FAILED:
            raise ConfigError(f"{what} on {url}: not authorised ({exc}); check the user") from exc
        raise StoreError(f"{what} on {url} failed: {exc}; retry later") from exc
    except pymongo.errors.PyMongoError as exc:
        if said := tls.refused_in_text(str(exc), "tlsCAFile"):
            raise ConfigError(f"{what} on {url} failed: {said}") from exc
        raise StoreError(f"{what} on {url} failed: {exc}; retry later") from exc


class MongoLookup(Closing):
    """Canonical coordinate keys in a MongoDB collection; a context manager.

    Args:
        url: ``mongodb://host:port/database?collection=name``.
        client: an existing client (tests pass ``mongomock.MongoClient()``); the lookup
            does not close a client it was given.

    Raises:
        ConfigError: a bad URL or option.
    """

    def __init__(self, *, url: str, client: Any = None) -> None:
        parsed = urls.parse(url)
        self._url = parsed.shown
        if parsed.scheme != "mongodb":
            raise ConfigError(f"{self._url} is not a mongodb://host:port/database URL")
        collection = parsed.options.get("collection", DEFAULT_COLLECTION)
        rest = [(k, v) for k, v in parsed.query if k != "collection"]
        insecure = sorted(k for k, v in rest if k.lower() in _INSECURE and v.lower() == "true")
        if insecure:
            log.warning(
                "%s: %s: TLS without checking the server's certificate or name; the connection "
                "is encrypted but anyone on the way may answer for the server",
                self._url,
                ", ".join(insecure),
            )
        given = {k.lower() for k, _ in rest}
        rest += [(k, v) for k, v in _TIMEOUTS.items() if k.lower() not in given]
        driver_url = parsed.with_query(rest)
        try:
            with _errors("reading the URL", self._url):
                driver = uri_parser.parse_uri(driver_url)  # the driver's own checks
        except ValueError as exc:  # pymongo reports some bad URLs (a bad port) this way
            raise ConfigError(f"{self._url}: {exc}") from exc
        database = driver["database"] or DEFAULT_DATABASE
        for name in (database, collection):
            if not _NAME.match(name):
                raise ConfigError(f"{self._url}: bad database or collection name {name!r}")
        self._own_client = client is None
        with _errors("creating the client", self._url):
            self._client = client if client is not None else pymongo.MongoClient(driver_url)
        self._collection = self._client[database][collection]

    def present(self, keys: pl.Series) -> pl.Series:
        """Those of ``keys`` already recorded, in the order and under the name given."""
        unique = keys.drop_nulls().unique(maintain_order=True).to_list()
        found: list[str] = []
        with _errors(f"looking up {len(unique)} keys", self._url):
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                cursor = self._collection.find({"_id": {"$in": chunk}}, projection={"_id": 1})
                found += [doc["_id"] for doc in cursor]
        log.debug("%d of %d keys present in %s", len(found), len(unique), self._url)
        return keys.filter(keys.is_in(pl.Series(found, dtype=pl.String).implode()))

    def add(self, keys: pl.Series) -> None:
        """Record ``keys``; keys already recorded (duplicate-key errors) are fine.

        Raises:
            StoreError: any other write error, or the server failed.
        """
        unique = keys.drop_nulls().unique(maintain_order=True).to_list()
        with _errors(f"recording {len(unique)} keys", self._url):
            for start in range(0, len(unique), CHUNK):
                documents = [{"_id": key} for key in unique[start : start + CHUNK]]
                try:
                    self._collection.insert_many(documents, ordered=False)
                except pymongo.errors.BulkWriteError as exc:
                    if not _only_duplicates(exc.details):
                        raise

    def ping(self) -> None:
        """The server's ``ping`` command (waits up to ``serverSelectionTimeoutMS``)."""
        with _errors("ping", self._url):
            self._client.admin.command("ping")

    def close(self) -> None:
        """Close the client (unless it was passed in)."""
        if self._own_client:
            self._client.close()


def _only_duplicates(details: Mapping[str, Any]) -> bool:
    """Whether a bulk write failed only because some ``_id`` values were already there."""
    errors = details.get("writeErrors", [])
    return (
        bool(errors)
        and all(e.get("code") == _DUPLICATE_KEY for e in errors)
        and not details.get("writeConcernErrors")
    )


class MongomockLookup(MongoLookup):
    """``mongomock://host/db``: the same lookup on an in-process mongomock client.

    For tests and demos of one loader process (the keys live in its memory only).
    """

    def __init__(self, *, url: str) -> None:
        try:
            import mongomock
        except ModuleNotFoundError as exc:
            raise MissingDependencyError("mongomock", "dev") from exc
        real = urls.parse(url).with_scheme("mongodb")
        super().__init__(url=real, client=mongomock.MongoClient())
