"""A real S3 endpoint (moto's server mode) on 127.0.0.1 in a background thread, for tests.

Usage::

    with S3TestServer() as server:
        server.endpoint                     # http://127.0.0.1:PORT
        bucket = server.bucket("in/")       # a new bucket; files written under "in/"
        bucket.write("a.txt", b"...")       # the object "in/a.txt"

:func:`aws_environment` points the AWS variables at the server (and away from the
developer's ``~/.aws``), the way a user points them at an S3-compatible store.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

ACCESS_KEY = "etl4all-test-key"
SECRET_KEY = "etl4all-test-secret"


class S3TestServer:
    """moto's S3 on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def __enter__(self) -> S3TestServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()

    def client(self) -> Any:
        """A boto3 client of the server, with the test's keys."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self, prefix: str = "") -> Bucket:
        """A new bucket with a unique name; its files are written under ``prefix``."""
        return Bucket(self.client(), f"etl4all-test-{uuid.uuid4().hex[:12]}", prefix)


class Bucket:
    """The objects under a prefix of a bucket, by name relative to the prefix."""

    def __init__(self, client: Any, name: str, prefix: str) -> None:
        self.client, self.name, self.prefix = client, name, prefix
        client.create_bucket(Bucket=name)

    def url(self, path: str = "") -> str:
        """The source URL of ``path`` (relative to the prefix)."""
        return f"s3://{self.name}/{self.prefix}{path}"

    def write(self, name: str, data: bytes) -> str:
        """Put the object; its ETag."""
        put = self.client.put_object(Bucket=self.name, Key=self.prefix + name, Body=data)
        return str(put["ETag"])

    def append(self, name: str, data: bytes) -> None:
        self.write(name, self.read(name) + data)

    def read(self, name: str) -> bytes:
        got = self.client.get_object(Bucket=self.name, Key=self.prefix + name)
        return bytes(got["Body"].read())

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=self.prefix + name)

    def mtime(self, name: str) -> float:
        head = self.client.head_object(Bucket=self.name, Key=self.prefix + name)
        return float(head["LastModified"].timestamp())

    def upload(self, folder: Path) -> list[str]:
        """Put every file of ``folder`` (not recursively); their names."""
        names = sorted(path.name for path in folder.iterdir() if path.is_file())
        for name in names:
            self.write(name, (folder / name).read_bytes())
        return names


def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> None:
    """The AWS variables a user sets for an S3-compatible store at ``endpoint``; no AWS file
    of this machine, and no instance metadata, is looked at."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
