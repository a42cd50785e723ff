"""MongoLookup: the Lookup contract on mongomock, specifics on a mongomock client passed in,
and a live test when ETL4ALL_MONGO_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import mongomock
import polars as pl
import pymongo
import pymongo.errors
import pytest
from contracts.lookup import LookupContract

from etl4all import lookup as lookup_role
from etl4all.errors import ConfigError, StoreError
from etl4all.lookup import mongodb
from etl4all.lookup.mongodb import MongoLookup, MongomockLookup

URL = "mongodb://127.0.0.1:27017/etl4all_test?collection=keys"
KEYS = ["-30.04982864,-51.20150245", "-30.04982865,-51.20150246", "0.00000000,-0.50000000"]


@pytest.fixture
def client() -> mongomock.MongoClient:
    return mongomock.MongoClient()


@pytest.fixture
def lookup(client: mongomock.MongoClient) -> Iterator[MongoLookup]:
    with MongoLookup(url=URL, client=client) as lookup:
        yield lookup


class TestMongomockLookup(LookupContract):
    @pytest.fixture
    def lookup(self) -> Iterator[MongomockLookup]:
        with MongomockLookup(url="mongomock://localhost/etl4all_test") as lookup:
            yield lookup


def test_add_then_present(lookup: MongoLookup, client: mongomock.MongoClient) -> None:
    assert lookup.present(pl.Series("k", KEYS)).to_list() == []
    lookup.add(pl.Series(KEYS[:2]))
    found = lookup.present(pl.Series("k", [KEYS[2], KEYS[1], KEYS[0], None]))
    assert found.name == "k"
    assert found.to_list() == [KEYS[1], KEYS[0]]
    assert sorted(d["_id"] for d in client.etl4all_test.keys.find()) == sorted(KEYS[:2])


def test_add_tolerates_duplicates(lookup: MongoLookup, client: mongomock.MongoClient) -> None:
    lookup.add(pl.Series(KEYS[:2]))
    lookup.add(pl.Series([*KEYS, KEYS[2]]))  # two known, one new, one twice
    assert client.etl4all_test.keys.count_documents({}) == 3


def test_chunks(lookup: MongoLookup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongodb, "CHUNK", 2)
    many = pl.Series([f"-30.{i:08d},-51.00000000" for i in range(7)])
    lookup.add(many[:5])
    assert lookup.present(many).to_list() == many[:5].to_list()


def test_default_database_and_collection(client: mongomock.MongoClient) -> None:
    MongoLookup(url="mongodb://h:27017", client=client).add(pl.Series(KEYS[:1]))
    assert client.etl4all.address_keys.count_documents({}) == 1


def test_from_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pymongo, "MongoClient", mongomock.MongoClient)
    lookup = lookup_role.from_url(URL, warehouse=None)  # type: ignore[arg-type]
    assert isinstance(lookup, MongoLookup)
    lookup.close()


@pytest.mark.parametrize(
    "bad",
    [
        "mongodb://h:27017/db?notAnOption=1",
        "mongodb://h:port/db",
        "mongodb://h:27017/bad$name",
        "mongodb://h:27017/db?collection=bad$name",
        "redis://h:6379/0",
    ],
)
def test_bad_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        MongoLookup(url=bad, client=mongomock.MongoClient())


class _Failing:
    """A collection whose every call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def find(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    def insert_many(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _bulk(code: int) -> pymongo.errors.BulkWriteError:
    return pymongo.errors.BulkWriteError(
        {"writeErrors": [{"index": 0, "code": 11000}, {"index": 1, "code": code}]}
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (pymongo.errors.ServerSelectionTimeoutError("down"), StoreError),
        (pymongo.errors.AutoReconnect("lost"), StoreError),
        (pymongo.errors.OperationFailure("auth", code=18), ConfigError),
        (pymongo.errors.OperationFailure("busy", code=262), StoreError),
        (_bulk(121), StoreError),  # document validation failed: not a duplicate
    ],
)
def test_driver_errors_are_mapped(lookup: MongoLookup, error: Exception, expected: type) -> None:
    lookup._collection = _Failing(error)
    with pytest.raises(expected) as info:
        lookup.add(pl.Series(KEYS))
    assert info.value.__cause__ is error
    if not isinstance(error, pymongo.errors.BulkWriteError):
        with pytest.raises(expected):
            lookup.present(pl.Series(KEYS))


def test_password_is_not_in_messages() -> None:
    lookup = MongoLookup(url="mongodb://u:s3cret@h:27017/db", client=mongomock.MongoClient())
    lookup._collection = _Failing(pymongo.errors.AutoReconnect("lost"))
    with pytest.raises(StoreError) as info:
        lookup.present(pl.Series(KEYS))
    assert "s3cret" not in str(info.value)


def test_owned_client_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = []
    monkeypatch.setattr(mongomock.MongoClient, "close", lambda self: closed.append(self))
    monkeypatch.setattr(pymongo, "MongoClient", mongomock.MongoClient)
    with MongoLookup(url=URL):
        pass
    with MongoLookup(url=URL, client=mongomock.MongoClient()):
        pass
    assert len(closed) == 1


@pytest.mark.mongodb
@pytest.mark.skipif(not os.environ.get("ETL4ALL_MONGO_URL"), reason="ETL4ALL_MONGO_URL is not set")
def test_live_mongodb() -> None:
    base = os.environ["ETL4ALL_MONGO_URL"]
    collection = f"keys_{uuid.uuid4().hex[:10]}"
    separator = "&" if "?" in base else "?"
    with MongoLookup(url=f"{base}{separator}collection={collection}") as lookup:
        try:
            lookup.add(pl.Series(KEYS[:2]))
            lookup.add(pl.Series(KEYS))
            assert lookup.present(pl.Series(KEYS)).to_list() == KEYS
        finally:
            lookup._collection.drop()


def test_mongomock_scheme_gives_a_working_in_process_lookup() -> None:
    with lookup_role.from_url("mongomock://localhost/etl4all", warehouse=None) as keys:  # type: ignore[arg-type]
        keys.add(pl.Series(["-30.00000000,-51.00000000"]))
        found = keys.present(pl.Series(["-30.00000000,-51.00000000", "1.00000000,2.00000000"]))
        assert found.to_list() == ["-30.00000000,-51.00000000"]


def test_a_silent_server_is_bounded_by_default_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[str] = []
    monkeypatch.setattr(
        pymongo, "MongoClient", lambda url: given.append(url) or mongomock.MongoClient()
    )
    with MongoLookup(url="mongodb://h:27017/db?socketTimeoutMS=5000"):
        pass
    (url,) = given
    assert "socketTimeoutMS=5000" in url and "connectTimeoutMS=10000" in url
    assert "serverSelectionTimeoutMS=10000" in url and url.count("socketTimeoutMS") == 1
