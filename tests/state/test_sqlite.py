"""SqliteState: the ledger and cache contracts, plus what is specific to a local file."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from contracts.state import FILE, CacheContract, LedgerContract
from virtual_clock import VirtualClock

from etl4all import state as state_role
from etl4all.errors import ConfigError, StoreConfigError
from etl4all.state.base import FileMark, StateStore
from etl4all.state.sqlite import SqliteState


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/deep/er/state.db"


@pytest.fixture
def store_url(db_url: str) -> str:
    """The contracts' store: a fresh SQLite file."""
    return db_url


@pytest.fixture
def store_options(clock: VirtualClock) -> dict[str, Any]:
    """The contracts' stores read their expiries on the contract's clock."""
    return {"clock": clock}


class TestSqliteLedger(LedgerContract):
    """The file ledger contract on SQLite."""


class TestSqliteCache(CacheContract):
    """The geocode cache contract on SQLite."""


def test_creates_the_folder_in_wal_mode(db_url: str, tmp_path: Path) -> None:
    with SqliteState(url=db_url):
        pass
    path = tmp_path / "deep/er/state.db"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_built_from_url(db_url: str) -> None:
    with state_role.from_url(db_url) as state:
        assert isinstance(state, SqliteState)
        assert isinstance(state, StateStore)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://host/x.db"])
def test_urls_without_a_file_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        SqliteState(url=url)


def test_unusable_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create folder"):
        SqliteState(url=f"sqlite:///{tmp_path}/file/state.db")


def test_a_file_that_is_not_a_database_is_a_config_error_saying_what_to_do(
    tmp_path: Path,
) -> None:
    """Issue 17, item 6: no retry fixes it (it was exit 1, "run again", for ever)."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreConfigError, match=r"state\.db") as info:
        SqliteState(url=f"sqlite:///{path}")
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert isinstance(info.value, ConfigError) and not info.value.retryable
    assert "move it aside" in str(info.value) and "--state" in str(info.value)


def test_a_damaged_database_is_a_config_error_when_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteState(url=f"sqlite:///{path}") as state:
        state.mark_done({f"{FILE}.{i}": FileMark(i, 1.0, "ab" * 32) for i in range(2000)})
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 2 + 64] = b"\xff" * 64  # a page of the done_files table
    path.write_bytes(bytes(data))
    keys = [f"{FILE}.{i}" for i in range(2000)]
    with (
        pytest.raises(StoreConfigError, match="move it aside"),
        SqliteState(url=f"sqlite:///{path}") as state,
    ):
        state.done(keys)


def test_a_folder_this_user_cannot_write_is_a_config_error(unwritable_dir: Path) -> None:
    with pytest.raises(StoreConfigError, match=r"writable for this user|--state"):
        SqliteState(url=f"sqlite:///{unwritable_dir}/state.db")
    assert not (unwritable_dir / "state.db").exists()


def test_a_folder_as_the_state_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="is a folder"):
        SqliteState(url=f"sqlite:///{tmp_path}")


def _claim_many(url: str, keys: list[str], start: multiprocessing.synchronize.Event) -> list[str]:
    start.wait()
    with SqliteState(url=url) as state:
        return [key for key in keys if state.claim(key, 30)]


def test_processes_racing_on_claims_one_wins_each(db_url: str) -> None:
    SqliteState(url=db_url).close()
    keys = [f"{FILE}.{i}" for i in range(40)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(3) as pool:
        start = manager.Event()
        results = [pool.apply_async(_claim_many, (db_url, keys, start)) for _ in range(3)]
        start.set()
        won = [key for result in results for key in result.get(timeout=60)]
    assert sorted(won) == sorted(keys)


def test_done_marks_of_an_older_version_are_read_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # done_files as versions before partial marks made it
        old.execute(
            "CREATE TABLE done_files (key TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " mtime REAL NOT NULL, sha256 TEXT NOT NULL, done_at REAL NOT NULL)"
        )
        old.execute("INSERT INTO done_files VALUES (?, 3, 4.5, 'ab', 6.0)", (FILE,))
    old.close()
    with SqliteState(url=f"sqlite:///{path}") as store:
        assert store.done([FILE]) == {FILE: FileMark(3, 4.5, "ab")}
        store.mark_done({FILE: FileMark(3, 4.5, "ab", partial_since=7.0)})
        assert store.done([FILE])[FILE].partial_since == 7.0
