"""Private folders for the TSV files of ``LOAD DATA LOCAL``: they hold address data.

Each load writes in a folder of its own under ``{spool}/etl4all-{uid}/`` (``spool_dir``),
folders 0700 and files 0600, removed when the load ends; :func:`sweep` removes those of dead
loaders when a MySQL warehouse opens. Errors name the local folder (:func:`writing`): a full
disk here is this machine's to fix. See docs/backends.md (Warehouses and the lookup).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from etl4all.errors import ConfigError, WarehouseError

log = logging.getLogger(__name__)

STALE_SECONDS = 3600.0
"""A load folder older than this belongs to a dead loader, whatever its pid says."""
PREFIX = "load-"
"""Name prefix of every load folder."""
HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
"""This machine's name as it appears in folder names (no ``-``)."""


_REFUSED = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR}
"""Errors of a spool folder this user cannot write to (or that is not there): a
configuration fault. Any other (a full disk) is an outage of this machine: retryable."""


def root(base: str | os.PathLike[str] | None = None) -> Path:
    """This user's spool folder ``{base}/etl4all-{uid}`` (0700), created if missing.

    ``base`` is the ``spool_dir`` setting (``$TMPDIR`` when set); None: the system's temporary
    folder. A ``base`` that cannot be written to is an error, never replaced by another folder.

    Raises:
        ConfigError: ``base`` is not a folder this user can write to, or ``etl4all-{uid}``
            there is a symlink, not a folder, or another user's.
        WarehouseError: the folder cannot be created for another reason (a full disk).
    """
    folder = Path(base) if base is not None else Path(tempfile.gettempdir())
    path = folder / f"etl4all-{os.getuid()}"
    with writing(path, f"creating {path.name}"):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(
            f"{path} is not a folder of this user; remove it (or set ETL4ALL_SPOOL_DIR or TMPDIR "
            "elsewhere): etl4all keeps its LOAD DATA files there"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        with writing(path, f"making {path.name} private"):
            path.chmod(0o700)
    return path


@contextlib.contextmanager
def load_folder(parent: Path | None = None) -> Iterator[Path]:
    """A new private folder (0700) for one load's files, removed with them when the load ends;
    in ``parent`` (a :func:`root`), by default the system temporary folder's."""
    prefix = f"{PREFIX}{HOST}-{_process(os.getpid())}-"
    parent = parent if parent is not None else root()
    with writing(parent, "creating a load folder"):
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def writing(path: Path, action: str) -> Iterator[None]:
    """Translate the ``OSError`` of ``action`` on ``path``, in the spool, into an error that
    names the local folder (this machine's disk, not the database server's).

    Raises:
        ConfigError: the folder cannot be written to by this user (or is gone).
        WarehouseError: any other failure, such as a full disk (retryable).
    """
    try:
        yield
    except FileExistsError:
        raise  # something planted a file in a private folder: not a fault of the folder
    except OSError as exc:
        where = path if path.is_dir() else path.parent
        said = f"{action} in the local spool folder {where} failed: {exc.strerror or exc}"
        if exc.errno in _REFUSED:
            raise ConfigError(
                f"{said}; make it writable for this user, or set ETL4ALL_SPOOL_DIR (or TMPDIR) "
                "to a folder it can write to (on the loader's machine, not the database server)"
            ) from exc
        raise WarehouseError(
            f"{said}; free space there or set ETL4ALL_SPOOL_DIR (or TMPDIR) to a folder with "
            "more (the disk of the loader's machine, not the database server's); retry later"
        ) from exc


def private_file(path: Path) -> int:
    """Create the file ``path`` with mode 0600 (it must not exist); its open descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def sweep(parent: Path | None = None) -> int:
    """Remove the load folders of dead loaders in ``parent`` (a :func:`root`, by default the
    system temporary folder's; see the module docstring); how many.

    Raises:
        ConfigError: the spool folder is not this user's.
    """
    removed = 0
    for entry in os.scandir(parent if parent is not None else root()):
        ours = entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False)
        if ours and _stale(entry):
            shutil.rmtree(entry.path, ignore_errors=True)
            log.info("removed %s, left by a loader that died mid-load", entry.path)
            removed += 1
    return removed


def _stale(entry: os.DirEntry[str]) -> bool:
    """Whether the load folder ``entry`` belongs to a dead loader."""
    try:
        age = time.time() - entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:  # its loader just removed it
        return False
    if age > STALE_SECONDS:
        return True
    parts = entry.name[len(PREFIX) :].rsplit("-", 2)
    if len(parts) != 3 or parts[0] != HOST:
        return False  # another host's: only its age tells
    pid = parts[1].split(".")[0]
    return pid.isdigit() and _process(int(pid)) != parts[1]


def _process(pid: int) -> str:
    """``pid.starttime`` of a running process (``/proc``), ``pid`` without ``/proc``, or ``""``
    when no such process runs."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            # the command name (2nd field) may hold spaces and parentheses: split after it
            start = stat_file.read().rsplit(")", 1)[1].split()[19]
        return f"{pid}.{start}"
    except FileNotFoundError:
        if os.path.isdir("/proc"):
            return ""
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ""
    except PermissionError:  # it runs, as another user
        pass
    return str(pid)
