"""The Lookup contract: every lookup (MongoDB, the warehouse itself) passes the same tests.

A backend's test module subclasses :class:`LookupContract` and overrides the ``lookup``
fixture (a fresh, test-private lookup) and, when the lookup answers from a warehouse, the
``commit`` fixture: what the load stage does before it calls ``add`` (commit the rows to
that warehouse). The default ``commit`` does nothing, for lookups that keep their own keys.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest

from contracts.warehouse import addresses, keys
from etl4all.lookup.base import Lookup

Commit = Callable[[pl.DataFrame], object]


class LookupContract:
    """Tests every Lookup backend passes."""

    @pytest.fixture
    def lookup(self) -> Lookup:
        """A fresh lookup; each backend's test module overrides this."""
        raise NotImplementedError

    @pytest.fixture
    def commit(self) -> Commit:
        """Commit address rows where the lookup looks (nothing for a separate store)."""
        return lambda rows: None

    @staticmethod
    def record(lookup: Lookup, commit: Commit, rows: pl.DataFrame) -> pl.Series:
        """What the load stage does with new rows: commit them, then add their keys."""
        commit(rows)
        added = keys(rows)
        lookup.add(added)
        return added

    def test_satisfies_the_protocol(self, lookup: Lookup) -> None:
        assert isinstance(lookup, Lookup)

    def test_ping_answers(self, lookup: Lookup) -> None:
        lookup.ping()

    def test_nothing_is_present_at_first(self, lookup: Lookup) -> None:
        assert lookup.present(keys(addresses(3))).to_list() == []

    def test_recorded_keys_are_present(self, lookup: Lookup, commit: Commit) -> None:
        recorded = self.record(lookup, commit, addresses(3))
        other = keys(addresses(2, offset=10))
        asked = pl.concat([other[:1], recorded[2:], recorded[:2], other[1:], recorded[:1]])
        found = lookup.present(asked.rename("k"))
        assert found.name == "k"
        assert found.to_list() == [recorded[2], recorded[0], recorded[1], recorded[0]]

    def test_add_is_idempotent(self, lookup: Lookup, commit: Commit) -> None:
        rows = addresses(3)
        recorded = self.record(lookup, commit, rows)
        self.record(lookup, commit, rows)
        lookup.add(pl.concat([recorded, recorded]))
        assert lookup.present(recorded).to_list() == recorded.to_list()

    def test_empty_input(self, lookup: Lookup) -> None:
        empty = pl.Series("k", [], dtype=pl.String)
        lookup.add(empty)
        found = lookup.present(empty)
        assert found.to_list() == []
        assert found.name == "k"

    def test_close_is_idempotent(self, lookup: Lookup) -> None:
        with lookup as same:
            assert same is lookup
        lookup.close()
