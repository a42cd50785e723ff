"""An OpenSSH sshd of the test's own on a free loopback port, with OpenSSH's sftp-server.

Usage::

    with PrivateSshd(tmp_path / "sshd") as server:
        server.install_client_key(home)      # home/.ssh/id_ed25519, as a user has it
        url = f"{server.url}/~/in?known_hosts={server.known_hosts()}"  # sftp://root@…

Host keys of three types (ed25519, ecdsa, rsa) and client keys (ed25519, rsa) are made by
``ssh-keygen`` in ``folder``; ``known_hosts(kind)`` lists the host key of one type (or all)
for ``[127.0.0.1]:PORT``. The login is the current user's (root, in CI), by key only
(``authorized_keys`` in ``folder``: no PAM, no password). The SFTP session starts in
``home`` (``sftp-server -d``), the login folder of ``/~/`` URLs; other paths are absolute.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path

from private_server import PrivateServer

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
"""Debian's sftp-server, the ``Subsystem sftp`` of its default sshd_config."""
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
CLIENT_KEY_TYPES = ("ed25519", "rsa")


class PrivateSshd(PrivateServer):
    """``sshd -D -e -f CONFIG`` on ``127.0.0.1``, key login for the current user."""

    name = "sshd"
    banner = b"SSH-2.0-"

    def __init__(self, folder: Path) -> None:
        binary = "/usr/sbin/sshd"
        if not os.access(binary, os.X_OK) or not os.access(SFTP_SERVER, os.X_OK):
            raise RuntimeError("OpenSSH's sshd is not installed: apt-get install openssh-server")
        super().__init__(folder)
        self.binary = binary
        self.user = getpass.getuser()
        self.home = folder / "home"
        """The SFTP session's starting folder (``/~/`` in a URL)."""
        self.home.mkdir(exist_ok=True)
        keys = folder / "keys"
        keys.mkdir(exist_ok=True)
        self.host_keys = {kind: _keygen(keys / f"host_{kind}", kind) for kind in HOST_KEY_TYPES}
        self.client_keys = {kind: _keygen(keys / f"id_{kind}", kind) for kind in CLIENT_KEY_TYPES}
        authorized = folder / "authorized_keys"
        authorized.write_text(
            "".join(key.with_suffix(".pub").read_text() for key in self.client_keys.values())
        )
        authorized.chmod(0o600)
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            *(f"HostKey {key}" for key in self.host_keys.values()),
            "PidFile none",
            f"AuthorizedKeysFile {authorized}",
            "StrictModes no",  # pytest's tmp folders are not the user's home
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"Subsystem sftp {SFTP_SERVER} -d {self.home}",
            "LogLevel VERBOSE",
        ]
        self.config = folder / "sshd_config"
        self.config.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            # sshd's privilege separation folder (compiled in), made by its system unit
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    @property
    def url(self) -> str:
        """``sftp://USER@127.0.0.1:PORT`` (add the path and ``?known_hosts=``)."""
        return f"sftp://{self.user}@127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-D", "-e", "-f", str(self.config)]

    def known_hosts_line(self, kind: str) -> str:
        """The ``known_hosts`` line of the host key of type ``kind``."""
        public = self.host_keys[kind].with_suffix(".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"

    def known_hosts(self, *kinds: str) -> Path:
        """A ``known_hosts`` file of the host keys of ``kinds`` (all types when none)."""
        kinds = kinds or HOST_KEY_TYPES
        path = self.folder / f"known_hosts-{'-'.join(kinds)}"
        path.write_text("".join(self.known_hosts_line(kind) for kind in kinds))
        return path

    def install_client_key(self, home: Path, kind: str = "ed25519") -> None:
        """Put the client key of type ``kind`` where a user has it: ``home/.ssh/id_KIND``."""
        ssh = home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.client_keys[kind], ssh / f"id_{kind}")


def _keygen(path: Path, kind: str) -> Path:
    """A new key pair of type ``kind`` without a passphrase (``path``, ``path.pub``)."""
    bits = ["-b", "2048"] if kind == "rsa" else []  # OpenSSH's minimum, and the fastest made
    comment = f"etl4all-test-{kind}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path
