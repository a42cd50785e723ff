"""The geocode cache's shared half: :class:`PayloadCache`.

:class:`PayloadCache` implements :class:`~etl4all.state.base.GeocodeCache` once: it checks
keys, rows and TTLs, encodes and decodes (:mod:`etl4all.state.payloads`); a backend only
fetches and stores payloads. The codec is imported when the cache is first used: a command
that only reads the file ledger (a run with nothing new) never imports Polars.
"""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING

from etl4all.state.base import checked_ttl

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)


class PayloadCache(abc.ABC):
    """A :class:`~etl4all.state.base.GeocodeCache` over a store of JSON payloads by key."""

    def cache_get(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """Unexpired cached results of ``keys`` in ``scope``: one row per distinct key found.

        Raises:
            DataError: ``keys`` do not fit ``CACHE_KEYS_SCHEMA``.
            StoreError: the store failed.
        """
        from etl4all.state import payloads

        wanted = payloads.keys_of(keys)
        if wanted.is_empty():
            return payloads.decode(wanted)  # empty: no round trip
        found = self._fetch(scope, wanted)
        log.debug("cache get scope=%s: %d of %d keys found", scope, found.height, wanted.height)
        return payloads.decode(found)

    def cache_put(self, scope: str, rows: pl.DataFrame, ttl: float) -> None:
        """Cache ``rows`` (``CACHE_SCHEMA``) in ``scope`` for ``ttl`` seconds.

        Raises:
            ConfigError: ``ttl`` is not a positive number of seconds.
            DataError: ``rows`` do not fit ``CACHE_SCHEMA``.
            StoreError: the store failed.
        """
        from etl4all.state import payloads

        ttl = checked_ttl(ttl)
        encoded = payloads.encode(rows)
        self._store(scope, encoded, ttl)
        log.debug("cache put scope=%s: %d rows", scope, encoded.height)

    @abc.abstractmethod
    def _fetch(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """The unexpired payloads (``PAYLOADS_SCHEMA``) of distinct ``keys`` in ``scope``."""

    @abc.abstractmethod
    def _store(self, scope: str, payloads: pl.DataFrame, ttl: float) -> None:
        """Store ``payloads`` (``PAYLOADS_SCHEMA``) in ``scope`` for ``ttl`` seconds."""
