"""The warehouse contracts, one per role: DuckDB and MySQL pass the same tests.

:class:`WarehouseContract` checks the data path (:class:`~etl4all.warehouse.base.Warehouse`),
:class:`WarehouseAdminContract` the operator's path
(:class:`~etl4all.warehouse.base.WarehouseAdmin`). A backend's test class subclasses both and
overrides the ``warehouse`` fixture: a fresh, initialised, test-private warehouse.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from etl4all import frames
from etl4all.errors import ConfigError, DataError
from etl4all.parsing import parse
from etl4all.warehouse.base import (
    CHANGE_FIELDS,
    LoadResult,
    Warehouse,
    WarehouseAdmin,
    WarehouseBackend,
)

NONE = frames.empty(frames.ADDRESSES_SCHEMA)
AWKWARD = [
    "tab\there",
    "line\nfeed",
    "carriage\rreturn\r\n",
    "back\\slash \\N \\t \\\\",
    "quotes ' \" `",
    "São João, Paraná – Ñandú ✓ 🚀",
    "",
    "  trailing spaces  ",
    "NULL",
    "\\",
]


def addresses(
    n: int,
    *,
    offset: int = 0,
    source: str = "data_points_1.txt",
    street: str | None = "Rua dos Andradas",
) -> pl.DataFrame:
    """``n`` address rows with distinct coordinates, following the load schema."""
    index = list(range(offset, offset + n))
    frame = pl.DataFrame(
        {
            "source": [source] * n,
            "line": [3 * i + 1 for i in index],
            "latitude": [-30.04982864 - i * 1e-8 for i in index],
            "longitude": [-51.20150245 + i * 1e-8 for i in index],
            "distance_km": [2.2959 + i for i in index],
            "bearing_deg": [None if i % 2 else 137.352 for i in index],
            "street": [street] * n,
            "number": [None if i % 3 == 0 else str(i) for i in index],
            "neighborhood": ["Centro Histórico"] * n,
            "city": ["Porto Alegre"] * n,
            "postal_code": ["90020-004"] * n,
            "state": ["RS"] * n,
            "country": ["BR"] * n,
            "formatted_address": [f"Rua dos Andradas, {i} - Centro, Porto Alegre" for i in index],
            "place_id": [None] * n,
            "location_type": ["ROOFTOP"] * n,
            "geocoder": ["offline"] * n,
            "geocode_status": ["OK"] * n,
            "geocoded_at": [
                dt.datetime(2024, 5, 17, 13, 45, 7, 123456, tzinfo=dt.UTC)
                + dt.timedelta(microseconds=i)
                for i in index
            ],
        }
    )
    return frames.cast_frame(frame, frames.ADDRESSES_SCHEMA)


def keys(frame: pl.DataFrame) -> pl.Series:
    """The canonical coordinate keys of ``frame``."""
    return frame.select(frames.coordinate_key().alias("key"))["key"]


def pruned(
    warehouse: Warehouse,
    source: str,
    version: int,
    keep: pl.Series | None = None,
    *,
    low: str | None = None,
    high: str | None = None,
) -> int:
    """Rows deleted by a prune and, by keys, its finalize (one part: the whole prune)."""
    deleted = warehouse.prune(source, version, keep, low=low, high=high)
    return deleted + (warehouse.finalize(source, version) if keep is not None else 0)


def stored(warehouse: WarehouseAdmin) -> pl.DataFrame:
    """The table as comparable values: keyed, sorted, without ids and load timestamps."""
    return (
        warehouse.read()
        .with_columns(key=frames.coordinate_key())
        .drop("id", "latitude", "longitude", "created_at", "updated_at")
        .sort("key")
    )


class WarehouseFixtures:
    """The fixture both warehouse contracts share."""

    @pytest.fixture
    def warehouse(self) -> WarehouseBackend:
        """A fresh, initialised warehouse; each backend's test module overrides this."""
        raise NotImplementedError


class WarehouseContract(WarehouseFixtures):
    """The data path: load, look up, prune (observed through the operator's reads)."""

    def test_satisfies_the_protocol(self, warehouse: WarehouseBackend) -> None:
        assert isinstance(warehouse, Warehouse)

    def test_insert_then_read(self, warehouse: WarehouseBackend) -> None:
        rows = addresses(5)
        assert warehouse.load(rows, NONE) == LoadResult(inserted=5)
        assert warehouse.count() == 5
        table = stored(warehouse)
        assert table["key"].to_list() == sorted(keys(rows).to_list())
        back = table.sort("source_line")
        assert back["street"].to_list() == ["Rua dos Andradas"] * 5
        assert back["source_file"].to_list() == ["data_points_1.txt"] * 5
        assert back["source_line"].to_list() == [1, 4, 7, 10, 13]
        assert back["geocoded_at"].to_list() == rows["geocoded_at"].to_list()
        assert back["geocoded_at"].dtype == pl.Datetime("us", "UTC")

    def test_reload_is_unchanged(self, warehouse: WarehouseBackend) -> None:
        rows = addresses(4)
        warehouse.load(rows, NONE)
        before = stored(warehouse)
        assert warehouse.load(rows, NONE) == LoadResult(unchanged=4)
        assert warehouse.load(NONE, rows) == LoadResult(unchanged=4)
        assert warehouse.count() == 4
        assert stored(warehouse).equals(before)

    def test_empty_load(self, warehouse: WarehouseBackend) -> None:
        assert warehouse.load(NONE, NONE) == LoadResult()
        assert warehouse.count() == 0

    def test_changed_address_is_updated(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(3), NONE)
        changed = addresses(3).with_columns(
            street=pl.Series(["Rua Nova", "Rua dos Andradas", "Rua dos Andradas"]),
            geocoded_at=pl.lit(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
        )
        assert warehouse.load(NONE, changed) == LoadResult(updated=1, unchanged=2)
        table = stored(warehouse).sort("source_line")
        assert table["street"].to_list() == ["Rua Nova", "Rua dos Andradas", "Rua dos Andradas"]
        # geocoded_at follows the address: only the changed row takes the new time
        assert table["geocoded_at"][0] == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        assert table["geocoded_at"][1] == addresses(3)["geocoded_at"][1]

    @pytest.mark.parametrize("field", CHANGE_FIELDS)
    def test_every_change_field_counts(self, warehouse: WarehouseBackend, field: str) -> None:
        warehouse.load(addresses(1), NONE)
        changed = addresses(1).with_columns(pl.lit("changed").alias(field))
        assert warehouse.load(NONE, changed) == LoadResult(updated=1)
        assert stored(warehouse)[field].to_list() == ["changed"]
        # NULL-safe: a value becoming NULL is a change too
        assert warehouse.load(NONE, changed.with_columns(pl.lit(None).alias(field))).updated == 1

    def test_case_and_trailing_spaces_are_changes(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(1, street="Rua A"), NONE)
        assert warehouse.load(NONE, addresses(1, street="RUA A")).updated == 1
        assert warehouse.load(NONE, addresses(1, street="RUA A ")).updated == 1
        assert stored(warehouse)["street"].to_list() == ["RUA A "]

    @pytest.mark.parametrize("order", ["small first", "big first"])
    def test_provenance_follows_the_smallest_source(
        self, warehouse: WarehouseBackend, order: str
    ) -> None:
        small = addresses(2, source="a.txt").with_columns(distance_km=pl.lit(1.5))
        big = addresses(2, source="b.txt").with_columns(
            line=pl.Series([1, 2], dtype=pl.UInt32), distance_km=pl.lit(9.0), bearing_deg=None
        )
        first, second = (small, big) if order == "small first" else (big, small)
        warehouse.load(first, NONE)
        result = warehouse.load(NONE, second)
        assert result == (
            LoadResult(unchanged=2) if order == "small first" else LoadResult(updated=2)
        )
        table = stored(warehouse).sort("source_line")
        assert table["source_file"].to_list() == ["a.txt", "a.txt"]
        assert table["source_line"].to_list() == [1, 4]
        assert table["distance_km"].to_list() == [1.5, 1.5]
        assert table["bearing_deg"].to_list() == [137.352, None]

    def test_provenance_same_file_smaller_line(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(1).with_columns(line=pl.lit(50, pl.UInt32)), NONE)
        assert (
            warehouse.load(NONE, addresses(1).with_columns(line=pl.lit(7, pl.UInt32))).updated == 1
        )
        assert stored(warehouse)["source_line"].to_list() == [7]

    def test_stale_insert_does_not_duplicate(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(3), NONE)
        again = addresses(5).with_columns(street=pl.lit("Rua Nova"))  # 3 exist, 2 are new
        assert warehouse.load(again, NONE) == LoadResult(inserted=2, updated=3)
        assert warehouse.count() == 5
        assert set(stored(warehouse)["street"]) == {"Rua Nova"}

    def test_stale_update_is_not_lost(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(2), NONE)
        assert warehouse.load(NONE, addresses(4)) == LoadResult(inserted=2, unchanged=2)
        assert warehouse.count() == 4
        assert stored(warehouse)["key"].to_list() == sorted(keys(addresses(4)).to_list())

    def test_same_coordinate_in_both_frames_is_kept_once(self, warehouse: WarehouseBackend) -> None:
        one = addresses(1, source="b.txt")
        other = addresses(1, source="a.txt", street="Rua Outra")
        result = warehouse.load(one, other)
        assert result.inserted == 1
        assert warehouse.count() == 1
        assert stored(warehouse)["source_file"].to_list() == ["a.txt"]

    def test_existing(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(3), NONE)
        asked = pl.concat([keys(addresses(2, offset=5)), keys(addresses(3))]).rename("k")
        found = warehouse.existing(asked)
        assert found.name == "k"
        assert found.to_list() == keys(addresses(3)).to_list()
        assert warehouse.existing(pl.Series("k", [], dtype=pl.String)).to_list() == []

    def test_existing_matches_exact_decimals(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(1), NONE)
        key = keys(addresses(1))[0]
        near = key.replace("4,", "5,")  # one unit in the 8th decimal away
        assert warehouse.existing(pl.Series([key, near])).to_list() == [key]

    def test_nulls_survive(self, warehouse: WarehouseBackend) -> None:
        rows = (
            addresses(1)
            .with_columns(pl.lit(None, pl.String).alias(c) for c in CHANGE_FIELDS)
            .with_columns(distance_km=None, bearing_deg=None, geocoded_at=None)
        )
        warehouse.load(rows, NONE)
        table = stored(warehouse)
        for column in (*CHANGE_FIELDS, "distance_km", "bearing_deg", "geocoded_at"):
            assert table[column].to_list() == [None], column

    def test_awkward_text_round_trips(self, warehouse: WarehouseBackend) -> None:
        n = len(AWKWARD)
        rows = addresses(n).with_columns(
            street=pl.Series(AWKWARD),
            formatted_address=pl.Series(list(reversed(AWKWARD))),
            source=pl.Series([f"dir\\{s}" for s in AWKWARD]),
        )
        half = n // 2
        warehouse.load(rows[:half], rows[half:])  # both paths: inserts and stale updates
        table = stored(warehouse).sort("source_line")
        assert table["street"].to_list() == AWKWARD
        assert table["formatted_address"].to_list() == list(reversed(AWKWARD))
        assert table["source_file"].to_list() == [f"dir\\{s}" for s in AWKWARD]
        assert warehouse.load(rows, NONE) == LoadResult(unchanged=n)

    def test_numbers_round_trip(self, warehouse: WarehouseBackend) -> None:
        rows = addresses(3).with_columns(
            distance_km=pl.Series([1e-7, 12345.678901234567, 0.0]),
            bearing_deg=pl.Series([359.99999999999, float("nan"), -0.0]),
            latitude=pl.Series([-90.0, 89.99999999, 0.00000001]),
            longitude=pl.Series([-180.0, 179.99999999, -0.00000001]),
        )
        warehouse.load(rows, NONE)
        table = stored(warehouse).sort("source_line")
        assert table["distance_km"].to_list() == [1e-7, 12345.678901234567, 0.0]
        assert table["bearing_deg"].to_list()[0] == 359.99999999999
        assert table["bearing_deg"].to_list()[1] is None  # NaN is stored as NULL
        assert table["key"].to_list() == keys(rows).to_list()

    def test_rejects_are_recorded_once(self, warehouse: WarehouseBackend) -> None:
        rejects = pl.DataFrame(
            {
                "source": ["a.txt", "a.txt", "b.txt"],
                "line": [4, 9, 1],
                "reason": ["missing_longitude", "unrecognized", "dms_mismatch"],
                "text": ["Latitude: -30.1\nDistance: 1 km", "São\tPaulo \\ é", None],
                "detail": [None, "a labelled line in another layout", None],
                "reasons": ["missing_longitude", "unrecognized,missing_latitude", None],
            },
            schema=frames.REJECTS_SCHEMA,
        )
        assert warehouse.load_rejects(rejects) == 3
        stored = warehouse.select("reject", {}, after_id=0, limit=9)
        assert stored["detail"].to_list() == rejects["detail"].to_list()
        assert stored["reasons"].to_list() == rejects["reasons"].to_list()
        assert warehouse.load_rejects(rejects) == 0  # a replay adds nothing
        assert warehouse.load_rejects(rejects.clear()) == 0
        assert warehouse.load_rejects(rejects.head(1).with_columns(line=pl.lit(5, pl.UInt32))) == 1

    def test_rejects_of_the_parser_and_of_an_older_worker_are_kept(
        self, warehouse: WarehouseBackend
    ) -> None:
        older = pl.DataFrame(  # a worker from before detail and reasons
            {"source": ["a.txt"], "line": [3], "reason": ["unrecognized"], "text": ["x"]}
        )
        assert warehouse.load_rejects(older) == 1
        lines = ["Latitude: -30,5", "Longitude: -51.2", "Latitude: -30,1", "Distance: 1 km"]
        parsed = parse.parse("\n".join(lines).encode(), "b.txt").rejects  # two bad records
        assert warehouse.load_rejects(parsed) == 2
        assert warehouse.load_rejects(parsed) == 0  # a replay adds nothing
        stored = warehouse.select("reject", {}, after_id=0, limit=9)
        assert stored.select("source_file", "source_line", "reason", "reasons").rows() == [
            ("a.txt", 3, "unrecognized", None),
            ("b.txt", 1, "unrecognized", "unrecognized"),
            ("b.txt", 3, "unrecognized", "unrecognized,missing_longitude"),
        ]
        assert stored["text"][2] == "Latitude: -30,1\nDistance: 1 km"

    def test_a_reject_of_a_huge_garbage_line_is_kept(self, warehouse: WarehouseBackend) -> None:
        garbage = ("é" * 100_000 + "\n").encode()  # 200 KB of two-byte characters
        rejects = parse.parse(garbage, "junk.txt").rejects
        assert warehouse.load_rejects(rejects) == 1

    # -- file versions and prunes: a row goes when no file holds it any more -------------

    def test_prune_deletes_only_rows_no_file_holds(self, warehouse: WarehouseBackend) -> None:
        mine = addresses(6)
        other = pl.concat([addresses(3, offset=10), addresses(1, offset=4)]).with_columns(
            source=pl.lit("data_points_2.txt"), line=pl.Series([2, 5, 8, 11], dtype=pl.UInt32)
        )
        warehouse.load(mine, NONE, version=1)
        warehouse.load(other, NONE, version=1)
        kept = keys(mine).head(4)
        # keys 4 and 5 leave data_points_1.txt; data_points_2.txt still holds key 4
        assert pruned(warehouse, "data_points_1.txt", 2, kept) == 1
        assert pruned(warehouse, "data_points_1.txt", 2, kept) == 0  # a replay deletes nothing
        table = stored(warehouse)
        assert set(table["key"]) == set(kept) | set(keys(other))
        moved = table.filter(pl.col("key") == keys(mine)[4])
        assert moved.select("source_file", "source_line").row(0) == ("data_points_2.txt", 11)
        assert pruned(warehouse, "Data_points_2.txt", 2, keys(mine).clear()) == 0  # exact names
        assert pruned(warehouse, "data_points_2.txt", 2, keys(mine).clear()) == 4
        assert set(stored(warehouse)["key"]) == set(kept)

    def test_work_of_an_older_version_never_undoes_a_newer_one(
        self, warehouse: WarehouseBackend
    ) -> None:
        name = "data_points_1.txt"
        warehouse.load(addresses(3), NONE, version=5)
        assert pruned(warehouse, name, 9, keys(addresses(1))) == 2
        assert warehouse.load(addresses(3), NONE, version=5) == LoadResult(stale=3)
        assert warehouse.load(addresses(2), NONE, version=9).inserted == 1  # version 9's rows
        assert pruned(warehouse, name, 7, keys(addresses(0))) == 0  # late: none is its own
        late = addresses(1, offset=20).with_columns(reason=pl.lit("unrecognized"))
        rejects = late.select("source", "line", "reason", text=pl.lit("x"), detail=pl.lit(None))
        assert warehouse.load_rejects(rejects, version=8) == 0
        assert set(stored(warehouse)["key"]) == set(keys(addresses(2)))

    def test_a_late_prune_still_drops_what_only_older_versions_held(
        self, warehouse: WarehouseBackend
    ) -> None:
        """A version that only grows has no prune: the prune of the version before it must
        apply even when the grown version's rows came first."""
        name = "data_points_1.txt"
        warehouse.load(addresses(2), NONE, version=1)  # keys 0, 1
        warehouse.load(addresses(1, offset=2), NONE, version=3)  # the grown version: key 2
        assert pruned(warehouse, name, 2, keys(addresses(1, offset=2))) == 2  # version 2: key 2
        assert set(stored(warehouse)["key"]) == set(keys(addresses(1, offset=2)))

    def test_a_newer_version_keeps_what_it_loaded_before_its_prune(
        self, warehouse: WarehouseBackend
    ) -> None:
        warehouse.load(addresses(3), NONE, version=1)
        warehouse.load(addresses(2, offset=5), NONE, version=3)  # version 3's rows come first
        # late, it still drops what only versions 1 and 2 held, never version 3's rows
        assert pruned(warehouse, "data_points_1.txt", 2, keys(addresses(1))) == 2
        assert pruned(warehouse, "data_points_1.txt", 3, keys(addresses(2, offset=5))) == 1
        assert set(stored(warehouse)["key"]) == set(keys(addresses(2, offset=5)))

    def test_a_revert_drops_what_only_an_unfinished_version_added(
        self, warehouse: WarehouseBackend
    ) -> None:
        name = "data_points_1.txt"
        rejects = pl.DataFrame(
            {
                "source": [name] * 2,
                "line": [4, 9],
                "reason": ["unrecognized"] * 2,
                "text": ["x"] * 2,
            },
            schema_overrides={"line": pl.UInt32},
        )
        warehouse.load(addresses(2), NONE, version=1)  # keys 0, 1: the version done
        warehouse.load_rejects(rejects.head(1), version=1)
        warehouse.load(addresses(2, offset=1), NONE, version=3)  # keys 1, 2: cut short
        warehouse.load_rejects(rejects, version=3)
        assert warehouse.revert(name, 4, 1) == 1  # key 2 goes; key 1 stays, held since 1
        assert set(stored(warehouse)["key"]) == set(keys(addresses(2)))
        left = warehouse.select("reject", {}, after_id=0, limit=9)
        assert left["source_line"].to_list() == [4]
        assert warehouse.load(addresses(3), NONE, version=3) == LoadResult(stale=3)  # voided
        assert warehouse.revert(name, 2, 1) == 0  # a late revert changes nothing
        # late work of the version kept still applies (its batches may still be queued)
        assert warehouse.load(addresses(1, offset=7), NONE, version=1).inserted == 1
        assert warehouse.load(addresses(1, offset=8), NONE, version=5).inserted == 1

    def test_prune_by_version_drops_what_older_versions_alone_held(
        self, warehouse: WarehouseBackend
    ) -> None:
        warehouse.load(addresses(4), NONE, version=1)
        warehouse.load(addresses(2, offset=2), NONE, version=2)
        assert pruned(warehouse, "data_points_1.txt", 2) == 2
        assert set(stored(warehouse)["key"]) == set(keys(addresses(2, offset=2)))

    def test_a_record_that_moved_takes_its_new_line(self, warehouse: WarehouseBackend) -> None:
        warehouse.load(addresses(2), NONE, version=1)
        moved = addresses(2).with_columns(line=pl.Series([40, 1], dtype=pl.UInt32))
        warehouse.load(moved, NONE, version=2)
        assert sorted(stored(warehouse)["source_line"].to_list()) == [1, 40]

    def test_prune_in_key_ranges_looks_only_inside_its_range(
        self, warehouse: WarehouseBackend
    ) -> None:
        rows = addresses(6)  # latitudes fall as the index grows, longitudes rise
        warehouse.load(rows, NONE, version=1)
        ordered = keys(rows).reverse().to_list()  # ascending (latitude, longitude)
        low, high = ordered[2], ordered[4]
        name, none = "data_points_1.txt", pl.Series([], dtype=pl.String)
        assert pruned(warehouse, name, 2, pl.Series([ordered[3]]), low=low, high=high) == 1
        assert set(stored(warehouse)["key"]) == set(ordered) - {ordered[2]}
        assert pruned(warehouse, name, 2, none, high=low) == 2
        assert pruned(warehouse, name, 2, none, low=high) == 2
        assert stored(warehouse)["key"].to_list() == [ordered[3]]

    def test_a_prune_by_keys_deletes_only_once_finalized_and_a_revert_takes_it_back(
        self, warehouse: WarehouseBackend
    ) -> None:
        name = "data_points_1.txt"
        warehouse.load(addresses(3), NONE, version=1)
        assert warehouse.prune(name, 2, keys(addresses(1))) == 0  # marked, not deleted
        assert warehouse.count() == 3
        assert warehouse.revert(name, 3, 1) == 0  # version 2 cut short: its marks go back
        assert warehouse.finalize(name, 2) == 0  # voided
        assert warehouse.count() == 3
        assert warehouse.prune(name, 4, keys(addresses(1))) == 0
        assert warehouse.finalize(name, 4) == 2
        late = keys(addresses(1, offset=5))
        warehouse.load(addresses(1, offset=5), NONE, version=4)
        first = keys(addresses(1))[0]  # ordered after the late key: the range holds only it
        assert warehouse.prune(name, 4, late.clear(), low=late[0], high=first) == 1  # at once
        assert set(stored(warehouse)["key"]) == set(keys(addresses(1)))

    def test_prune_refuses_keys_that_are_not_canonical(self, warehouse: WarehouseBackend) -> None:
        with pytest.raises(DataError):
            pruned(warehouse, "a.txt", 1, pl.Series(["-30.1,-51.2"]))
        with pytest.raises(DataError):
            pruned(warehouse, "a.txt", 1, pl.Series([], dtype=pl.String), low="x")

    def test_a_newer_version_of_a_reject_takes_its_text(self, warehouse: WarehouseBackend) -> None:
        first = pl.DataFrame(
            {"source": ["a.txt"], "line": [4], "reason": ["unrecognized"], "text": ["Lat"]},
            schema_overrides={"line": pl.UInt32},
        )
        assert warehouse.load_rejects(first, version=1) == 1
        grown = first.with_columns(text=pl.lit("Latitude: 3x"), reasons=pl.lit("unrecognized"))
        assert warehouse.load_rejects(grown, version=2) == 0  # the same reject, now whole
        assert warehouse.load_rejects(first, version=1) == 0  # an older one changes nothing
        (text,) = warehouse.select("reject", {}, after_id=0, limit=9)["text"].to_list()
        assert text == "Latitude: 3x"

    def test_prune_rejects_drops_those_of_older_versions(self, warehouse: WarehouseBackend) -> None:
        rejects = pl.DataFrame(
            {
                "source": ["a.txt"] * 4 + ["b.txt"],
                "line": [4, 9, 12, 20, 4],
                "reason": [
                    "missing_longitude",
                    "unrecognized",
                    "dms_mismatch",
                    "geocode_failed",
                    "unrecognized",
                ],
                "text": [None] * 5,
                "detail": [None] * 5,
                "reasons": [None] * 5,
            },
            schema=frames.REJECTS_SCHEMA,
        )
        a = rejects.filter(pl.col("source") == "a.txt")
        assert warehouse.load_rejects(a, version=1) == 4
        assert warehouse.load_rejects(rejects.filter(pl.col("source") == "b.txt")) == 1
        assert warehouse.load_rejects(a.filter(pl.col("line") == 9), version=2) == 0  # kept
        assert warehouse.prune_rejects("a.txt", 2) == 3
        assert warehouse.prune_rejects("a.txt", 2) == 0
        assert warehouse.prune_rejects("a.txt", 1) == 0  # stale
        left = warehouse.select("reject", {}, after_id=0, limit=9)
        assert sorted(zip(left["source_file"], left["source_line"], strict=True)) == [
            ("a.txt", 9),
            ("b.txt", 4),
        ]


class WarehouseAdminContract(WarehouseFixtures):
    """The operator's path: the schema check, counts and the reads for reports."""

    def test_satisfies_the_admin_protocol(self, warehouse: WarehouseBackend) -> None:
        assert isinstance(warehouse, WarehouseAdmin)

    def test_an_initialised_warehouse_misses_no_table(self, warehouse: WarehouseBackend) -> None:
        assert warehouse.missing_schema() == []

    def test_counts_the_rows_and_knows_when_it_last_loaded(
        self, warehouse: WarehouseBackend
    ) -> None:
        assert (warehouse.count(), warehouse.last_loaded()) == (0, None)
        warehouse.load(addresses(3), NONE)
        last = warehouse.last_loaded()
        assert warehouse.count() == 3
        assert last is not None and last.utcoffset() == dt.timedelta(0)
        assert last == warehouse.read()["updated_at"].max()

    def test_select_pages_through_the_chosen_rows(self, warehouse: WarehouseBackend) -> None:
        rows = addresses(7).with_columns(
            geocoder=pl.Series(["offline", "google"] * 3 + ["offline"]),
            geocode_status=pl.Series(["OK", "OK", "ZERO_RESULTS"] * 2 + ["OK"]),
        )
        warehouse.load(rows, NONE)
        where = {"geocoder": ["offline"], "geocode_status": ["OK", "ZERO_RESULTS"]}
        first = warehouse.select("address", where, after_id=0, limit=2)
        rest = warehouse.select("address", where, after_id=first["id"].max(), limit=10)
        chosen = pl.concat([first, rest])
        assert first.height == 2 and rest.height == 2
        assert chosen["id"].is_sorted() and chosen["geocoder"].unique().to_list() == ["offline"]
        assert set(keys(chosen)) == set(keys(rows.filter(pl.col("geocoder") == "offline")))
        assert chosen.columns == warehouse.read().columns
        assert chosen["latitude"].dtype == pl.Float64
        everything = warehouse.select("address", {}, after_id=0, limit=100)
        assert everything.height == 7
        assert warehouse.select("address", where, after_id=chosen["id"].max(), limit=5).height == 0

    def test_select_rejects_by_reason(self, warehouse: WarehouseBackend) -> None:
        rejects = pl.DataFrame(
            {
                "source": ["a.txt", "a.txt", "b.txt"],
                "line": [4, 9, 1],
                "reason": ["geocode_failed", "unrecognized", "geocode_failed"],
                "text": ["-30.1,-51.2 timeout", "x", "'; DROP TABLE reject; --"],
                "detail": [None, "'; DROP TABLE reject; --", None],
                "reasons": ["geocode_failed", "unrecognized", "'; DROP TABLE reject; --"],
            },
            schema=frames.REJECTS_SCHEMA,
        )
        warehouse.load_rejects(rejects)
        chosen = warehouse.select("reject", {"reason": ["geocode_failed"]}, after_id=0, limit=9)
        assert chosen["source_file"].to_list() == ["a.txt", "b.txt"]
        assert chosen["text"].to_list() == ["-30.1,-51.2 timeout", "'; DROP TABLE reject; --"]
        quoted = warehouse.select(
            "reject", {"text": ["'; DROP TABLE reject; --"]}, after_id=0, limit=9
        )
        assert quoted["source_line"].to_list() == [1]

    def test_select_refuses_unknown_tables_and_columns(self, warehouse: WarehouseBackend) -> None:
        with pytest.raises(ConfigError, match="no column"):
            warehouse.select("address", {"id; DROP TABLE address": ["1"]}, after_id=0, limit=1)
        with pytest.raises(ConfigError, match="cannot select"):
            warehouse.select("users", {}, after_id=0, limit=1)
        with pytest.raises(ConfigError, match="no values"):
            warehouse.select("address", {"geocoder": []}, after_id=0, limit=1)
