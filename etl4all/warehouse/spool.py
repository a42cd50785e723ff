"""Private folders for the TSV files of ``LOAD DATA LOCAL``: they hold address data.

Every load writes its files in a folder of its own, ``{tmp}/etl4all-{uid}/load-{host}-{process}-
{random}``, where ``{process}`` is the loader's pid and start time (``/proc``), so a reused pid
is told apart. The per-user parent folder and each load folder are 0700 and each file is 0600
(:func:`private_file`): no other user of the machine can read them. A load removes its folder
when it ends, whatever happens.

A loader killed mid-load leaves its folder behind. :func:`sweep`, run when a MySQL warehouse is
opened, removes those of dead loaders: folders of this host whose process is gone, and any
folder older than :data:`STALE_SECONDS` (a load takes seconds; this also covers loaders of
other hosts sharing the folder, e.g. containers sharing ``/tmp``). A running loader's folder is
never removed, so any number of loaders may share the machine.
"""

from __future__ import annotations

import contextlib
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

from etl4all.errors import ConfigError

log = logging.getLogger(__name__)

STALE_SECONDS = 3600.0
"""A load folder older than this belongs to a dead loader, whatever its pid says."""
PREFIX = "load-"
"""Name prefix of every load folder."""
HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
"""This machine's name as it appears in folder names (no ``-``)."""


def root() -> Path:
    """This user's spool folder ``{tmp}/etl4all-{uid}`` (0700), created if missing.

    Raises:
        ConfigError: the folder exists but is a symlink, not a folder, or another user's.
    """
    path = Path(tempfile.gettempdir()) / f"etl4all-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(
            f"{path} is not a folder of this user; remove it (or set TMPDIR elsewhere): "
            "etl4all keeps its LOAD DATA files there"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


@contextlib.contextmanager
def load_folder() -> Iterator[Path]:
    """A new private folder (0700) for one load's files, removed with them when the load ends."""
    prefix = f"{PREFIX}{HOST}-{_process(os.getpid())}-"
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def private_file(path: Path) -> int:
    """Create the file ``path`` with mode 0600 (it must not exist); its open descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def sweep() -> int:
    """Remove the load folders of dead loaders (see the module docstring); how many.

    Raises:
        ConfigError: the spool folder is not this user's.
    """
    removed = 0
    for entry in os.scandir(root()):
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
