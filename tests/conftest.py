"""Fixtures every test folder may use: a disk that fills up, and a real S3-compatible
server for the remote-cache tests (moto's, on loopback, over HTTP).

One S3 server serves the session (each test gets its own bucket); a test that stops
the server mid-run starts its own. Credentials are throwaway values in the
environment, the way the AWS chain reads them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``full_disk(folder)``: files opened for writing under ``folder`` hit a full disk.

    Opening still creates the file (a full disk usually has inodes left); every write to
    it then fails with ENOSPC, because the descriptor handed back is ``/dev/full``'s.
    Only ``os.open`` is affected (``tempfile`` and flowpipe's claims use it).
    """
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    folders: list[Path] = []
    real_open = os.open

    def fake_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, **kwargs)
        target = Path(os.fsdecode(path)).absolute()
        if flags & (os.O_WRONLY | os.O_RDWR) and any(target.is_relative_to(f) for f in folders):
            os.close(fd)
            return real_open("/dev/full", os.O_WRONLY)
        return fd

    monkeypatch.setattr(os, "open", fake_open)
    return lambda folder: folders.append(Path(folder).absolute())


S3_SECRET = "moto-secret-7f3a9c1e-never-printed"  # distinctive: scanned for in outputs


class S3Process:
    """moto's S3 server in a child process, on loopback.

    A process, not moto's in-process thread, so the server's work stays out of the
    process under test and stopping it is what a crash is: its objects are gone.
    """

    def __init__(self, port: int = 0) -> None:
        if not port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto's S3 server did not start on port {port}")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)


def start_s3(port: int = 0) -> tuple[S3Process, str]:
    """A moto server on 127.0.0.1; returns (server, endpoint URL)."""
    server = S3Process(port)
    return server, server.endpoint


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    server, endpoint = start_s3()
    yield endpoint
    server.stop()


def s3_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point the AWS chain at ``endpoint`` with throwaway keys; nothing else leaks in."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "FLOWPIPE_REMOTE",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


def make_bucket(endpoint: str, name: str | None = None) -> str:
    name = name or f"flowpipe-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def s3_client(endpoint: str) -> Any:
    """A boto3 client for looking at (and tampering with) what flowpipe wrote."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="moto-access-key", aws_secret_access_key=S3_SECRET)


@pytest.fixture
def s3_endpoint(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    s3_environment(monkeypatch, s3_server)
    return s3_server


@pytest.fixture
def remote_url(s3_endpoint: str) -> str:
    """``s3://BUCKET/team`` on a fresh bucket of the session's server."""
    return f"s3://{make_bucket(s3_endpoint)}/team"


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def new_bucket(s3_endpoint: str) -> Any:
    """Make another bucket on the session's server; returns its name."""
    return lambda: make_bucket(s3_endpoint)


@pytest.fixture
def bucket_on() -> Any:
    """Make a bucket (a new name, or the one given) on the server at an endpoint."""
    return make_bucket


@pytest.fixture
def s3_client_on() -> Any:
    """A boto3 client for the server at an endpoint."""
    return s3_client


@pytest.fixture
def own_s3() -> Iterator[Any]:
    """Start moto servers this test may stop (``start(port=0) -> (server, endpoint)``)."""
    servers: list[Any] = []

    def start(port: int = 0) -> tuple[Any, str]:
        server, endpoint = start_s3(port)
        servers.append(server)
        return server, endpoint

    yield start
    for server in servers:
        server.stop()  # stopping one that is already stopped is harmless


@pytest.fixture
def s3_secret() -> str:
    return S3_SECRET
