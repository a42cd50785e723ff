"""A vsftpd of the test's own on a free loopback port, serving a tmp folder; FTP, or FTPS
(explicit TLS) with the test CA's certificate.

Usage::

    with PrivateVsftpd(tmp_path / "vsftpd", tls=TlsFiles.make(tmp_path / "tls")) as server:
        (server.root / "in").mkdir()
        url = f"{server.url}in/?ca={server.tls.ca}"   # ftps://anonymous:…@127.0.0.1:PORT/

The login is vsftpd's anonymous one (any password), chrooted into ``root`` as the ``ftp``
user that the Debian package creates: no PAM, no system user or file to add. With TLS, the
login and the data connections must be encrypted (``force_anon_*_ssl``) and vsftpd keeps its
default ``require_ssl_reuse=YES``: a data connection that does not resume the control
connection's TLS session is refused (``522 SSL connection failed: session reuse required``).
vsftpd must run as root (it chroots and drops to ``ftp``); it lists times in UTC.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from private_server import PrivateServer
from private_tls import TlsFiles

USER = "anonymous"
PASSWORD = "etl4all@example.org"


class PrivateVsftpd(PrivateServer):
    """``vsftpd`` in the foreground (``listen=YES``, ``background=NO``) on ``127.0.0.1``."""

    name = "vsftpd"
    banner = b"220 "

    def __init__(
        self, folder: Path, *, tls: TlsFiles | None = None, settings: dict[str, str] | None = None
    ) -> None:
        """``settings``: vsftpd.conf lines beside (or over) those of this test setup."""
        binary = shutil.which("vsftpd") or shutil.which("/usr/sbin/vsftpd")
        if binary is None:
            raise RuntimeError("vsftpd is not installed: apt-get install vsftpd")
        super().__init__(folder)
        self.binary = binary
        self.tls = tls
        self.scheme = "ftp" if tls is None else "ftps"
        self.root = folder / "root"
        """The served folder, ``/`` of the FTP session: world-readable, root's."""
        self.root.mkdir(exist_ok=True)
        self.root.chmod(0o755)
        empty = folder / "empty"  # vsftpd's secure_chroot_dir: root's, empty, not writable
        empty.mkdir(exist_ok=True)
        empty.chmod(0o555)
        config = {
            "listen": "YES",
            "listen_ipv6": "NO",
            "background": "NO",
            "listen_address": "127.0.0.1",
            "listen_port": str(self.port),
            "anonymous_enable": "YES",
            "local_enable": "NO",
            "write_enable": "NO",
            "anon_root": str(self.root),
            "ftp_username": "ftp",
            "secure_chroot_dir": str(empty),
            "seccomp_sandbox": "NO",
            "syslog_enable": "NO",
            "vsftpd_log_file": str(self.log),
            "log_ftp_protocol": "YES",
        }
        if tls is not None:
            config |= {
                "ssl_enable": "YES",
                "allow_anon_ssl": "YES",
                "force_anon_logins_ssl": "YES",
                "force_anon_data_ssl": "YES",
                "rsa_cert_file": str(tls.cert),
                "rsa_private_key_file": str(tls.key),
            }
        self.config = folder / "vsftpd.conf"
        config |= settings or {}
        self.config.write_text("".join(f"{key}={value}\n" for key, value in config.items()))

    @property
    def url(self) -> str:
        """``ftp://anonymous:…@127.0.0.1:PORT/`` (``ftps://`` with TLS); add the path."""
        return f"{self.scheme}://{USER}:{PASSWORD.replace('@', '%40')}@127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [self.binary, str(self.config)]
