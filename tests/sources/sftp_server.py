"""A real SFTP server (asyncssh) on 127.0.0.1 in a background thread, for tests.

Usage::

    with SftpTestServer(root, tmp_path / "ssh") as server:
        url = f"{server.url}/in{server.known_hosts_option}"  # sftp://user:password@…
        (server.root / "a.txt").write_text("...")

The server has a host key and accepts ``USER`` with ``PASSWORD`` or with the client key it
generates (``client_key_path``); ``known_hosts_path`` lists its host key for ``127.0.0.1``
at its port. SFTP paths are those of ``root`` (chroot): ``/a.txt`` is ``root/a.txt``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType

import asyncssh

USER = "user"
PASSWORD = "password"


class _Server(asyncssh.SSHServer):  # type: ignore[misc]
    """Password login for ``USER``; the client key is checked by asyncssh itself."""

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


class SftpTestServer:
    """Serves ``root`` over SFTP on a free port; keys and known_hosts under ``keys``."""

    def __init__(self, root: Path, keys: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        keys.mkdir(parents=True, exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = keys / "id_ed25519"
        client_key.write_private_key(str(self.client_key_path))
        client_key.write_public_key(str(keys / "id_ed25519.pub"))
        self._authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.known_hosts_path = keys / "known_hosts"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._listener: asyncssh.SSHAcceptor | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="sftp-test-server")
        self._thread.daemon = True

    @property
    def url(self) -> str:
        """``sftp://user:password@127.0.0.1:PORT`` (add the path, then ``known_hosts_option``)."""
        return f"sftp://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    @property
    def known_hosts_option(self) -> str:
        """``?known_hosts=…``: the query that trusts this server's host key."""
        return f"?known_hosts={self.known_hosts_path}"

    def known_hosts_line(self) -> str:
        """The ``known_hosts`` line of this server's host key."""
        key = self.host_key.export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {key}\n"

    def start(self) -> SftpTestServer:
        """Start serving in the background; write ``known_hosts_path``."""
        self._thread.start()
        self._listener = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._listener.get_port()
        self.known_hosts_path.write_text(self.known_hosts_line())
        return self

    def stop(self) -> None:
        """Stop serving and disconnect every client (again: nothing)."""
        if self._loop.is_closed():
            return
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.close()
            asyncio.run_coroutine_threadsafe(listener.wait_closed(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _listen(self) -> asyncssh.SSHAcceptor:
        root = str(self.root)
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=_Server,
            server_host_keys=[self.host_key],
            authorized_client_keys=self._authorized,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
            allow_scp=False,
        )

    def __enter__(self) -> SftpTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
