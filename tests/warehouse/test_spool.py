"""The private spool of the MySQL load's TSV files: owner-only, and swept after a dead loader."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from contracts.warehouse import NONE, addresses

from etl4all.errors import ConfigError, Etl4allError, WarehouseError
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.warehouse import spool
from etl4all.warehouse.mysql import MySqlWarehouse
from etl4all.warehouse.mysql_load import write_tsv


@pytest.fixture(autouse=True)
def tmpdir_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp folder of the test's own, for this process and the loaders it starts."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


LOADER = textwrap.dedent(
    """
    import sys, time
    import polars as pl
    from etl4all.warehouse import spool
    from etl4all.warehouse.mysql_load import write_tsv

    with spool.load_folder() as folder:
        write_tsv(pl.DataFrame({"street": ["Rua A, 10"]}), folder / "inserts.tsv")
        print(folder, flush=True)
        time.sleep(600)  # in the middle of its LOAD DATA
    """
)


@pytest.fixture
def loader() -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A loader process in the middle of a load: its folder holds a TSV file."""
    process = subprocess.Popen(
        [sys.executable, "-c", LOADER], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert process.stdout is not None
    folder = Path(process.stdout.readline().strip())
    try:
        yield process, folder
    finally:
        process.kill()
        process.wait()


def test_files_and_folders_are_owner_only(tmpdir_: Path) -> None:
    old = os.umask(0)  # even a permissive umask gives nothing away
    try:
        with spool.load_folder() as folder:
            write_tsv(pl.DataFrame({"street": ["Rua A, 10"]}), folder / "inserts.tsv")
            assert (folder / "inserts.tsv").read_text() == "Rua A, 10\n"
            modes = [
                p.stat().st_mode & 0o777 for p in (spool.root(), folder, folder / "inserts.tsv")
            ]
    finally:
        os.umask(old)
    assert modes == [0o700, 0o700, 0o600]
    assert not folder.exists()  # removed when the load ended
    assert spool.root().parent == tmpdir_


def test_a_file_is_never_written_through_an_existing_one(tmpdir_: Path) -> None:
    with spool.load_folder() as folder:
        (tmpdir_ / "elsewhere").write_text("x")
        (folder / "inserts.tsv").symlink_to(tmpdir_ / "elsewhere")
        with pytest.raises(FileExistsError):
            write_tsv(pl.DataFrame({"a": [1]}), folder / "inserts.tsv")
    assert (tmpdir_ / "elsewhere").read_text() == "x"


def test_a_killed_loaders_files_are_removed_when_a_warehouse_opens(
    loader: tuple[subprocess.Popen[str], Path], mysql_url: str
) -> None:
    process, folder = loader
    assert (folder / "inserts.tsv").exists()
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (folder / "inserts.tsv").exists()  # the dead loader left its address data
    MySqlWarehouse(url=mysql_url).close()
    assert not folder.exists()


def test_a_running_loaders_folder_is_kept(loader: tuple[subprocess.Popen[str], Path]) -> None:
    _, folder = loader
    with spool.load_folder() as mine:  # this process is loading too
        assert spool.sweep() == 0
        assert mine.exists()
    assert (folder / "inserts.tsv").exists()


def test_a_reused_pid_does_not_keep_a_dead_loaders_folder() -> None:
    """A loader in a container restarted with the same pid: its old folder is stale."""
    prefix = f"{spool.PREFIX}{spool.HOST}-{os.getpid()}.1-"  # our pid, another start time
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=spool.root()))
    assert spool.sweep() == 1
    assert not folder.exists()


def test_other_hosts_folders_are_removed_only_when_old() -> None:
    young = spool.root() / f"{spool.PREFIX}otherhost-12.34-abcd"
    old = spool.root() / f"{spool.PREFIX}otherhost-56.78-efgh"
    young.mkdir()
    old.mkdir()
    then = time.time() - spool.STALE_SECONDS - 60
    os.utime(old, (then, then))
    assert spool.sweep() == 1
    assert young.exists() and not old.exists()


def test_a_spool_folder_planted_by_someone_else_is_refused(tmpdir_: Path) -> None:
    target = tmpdir_ / "theirs"
    target.mkdir()
    (tmpdir_ / f"etl4all-{os.getuid()}").symlink_to(target)
    with pytest.raises(ConfigError, match="not a folder of this user"):
        spool.root()


# -- issue 17, item 7: spool faults name the local folder -----------------------------------


def test_an_unwritable_spool_folder_is_a_config_error_never_replaced(
    unwritable_dir: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        spool.root(unwritable_dir)
    said = str(caught.value)
    assert f"local spool folder {unwritable_dir}" in said and "ETL4ALL_SPOOL_DIR" in said
    with pytest.raises(ConfigError, match="No such file"):
        spool.root(unwritable_dir / "missing" if os.geteuid() else "/nonexistent-etl4all")


def test_tmpdir_names_the_spool_and_a_read_only_one_stops_before_connecting(
    unwritable_dir: Path,
) -> None:
    """It was silently replaced by /tmp; now the warehouse refuses to start (exit 2)."""
    settings = Settings.load(
        environ={"TMPDIR": str(unwritable_dir)},
        overrides={"warehouse_url": "mysql://root@127.0.0.1:1/etl4all"},  # nothing listens
    )
    with pytest.raises(ConfigError, match=f"local spool folder {unwritable_dir}"):
        wiring.open_warehouse(settings)  # a ConfigError, not the closed port's WarehouseError


def test_a_full_disk_while_writing_names_the_local_folder_and_is_retryable(
    tmpdir_: Path,
) -> None:
    """It read `loading 492 rows on mysql://… failed: No space left on device`."""
    with spool.load_folder() as folder:
        path = folder / "inserts.tsv"
        with pytest.raises(WarehouseError) as caught, spool.writing(path, "writing inserts.tsv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    said = str(caught.value)
    assert said.startswith(f"writing inserts.tsv in the local spool folder {folder} failed")
    assert "No space left on device" in said and "not the database server's" in said
    assert caught.value.retryable and not isinstance(caught.value, ConfigError)


@pytest.mark.mysql
def test_a_load_whose_spool_fails_names_the_folder_not_the_server(
    mysql_url: str, tmpdir_: Path
) -> None:
    with MySqlWarehouse(url=mysql_url, spool_dir=str(tmpdir_)) as warehouse:
        warehouse.init()
        root = spool.root(tmpdir_)
        root.chmod(0o500)  # as a disk that refuses new files would
        try:
            if os.geteuid() == 0:  # root writes anyway: make the folder go instead
                root.chmod(0o700)
                shutil.rmtree(root)
                root.write_text("not a folder")
            with pytest.raises(Etl4allError) as caught:
                warehouse.load(addresses(3), NONE)
        finally:
            if root.is_file():
                root.unlink()
            else:
                root.chmod(0o700)
    said = str(caught.value)
    assert "local spool folder" in said and str(tmpdir_) in said and "mysql://" not in said
