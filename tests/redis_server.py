"""A Redis for the tests: $WECOM_TEST_REDIS_URL, else a private redis-server on a free port.

Without either the Redis tests skip, saying how to run them; with WECOM_REQUIRE_REDIS=1 (CI)
they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

HOW = (
    "to run the Redis tests: apt-get install redis-server (a private server is started on a "
    "free port), or set WECOM_TEST_REDIS_URL=redis://HOST:PORT/DB; and pip install '.[redis]'"
)


def unavailable(why: str) -> NoReturn:
    """Skip the test, or fail it when WECOM_REQUIRE_REDIS is set (CI must run every test)."""
    message = f"{why}; {HOW}"
    if os.environ.get("WECOM_REQUIRE_REDIS"):
        pytest.fail(f"WECOM_REQUIRE_REDIS is set but {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private, memory-only redis-server on 127.0.0.1; `stop` and `start` keep the port."""

    def __init__(self, directory: Path, binary: str = "redis-server") -> None:
        self.directory = directory
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        log = self.directory / "redis.log"
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _pong(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = log.read_text(errors="replace") if log.exists() else "(no log)"
                raise RuntimeError(f"redis-server did not start on {self.port}:\n{text[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def binary() -> str:
    """The redis-server binary, or skip (fail under WECOM_REQUIRE_REDIS)."""
    found = shutil.which("redis-server")
    if found is None:
        unavailable("redis-server is not installed")
    return found


def need_package() -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        unavailable("the redis package is not installed")


@contextmanager
def private_server(directory: Path) -> Iterator[RedisServer]:
    """A started private server, stopped at the end."""
    need_package()
    server = RedisServer(directory, binary())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_url(directory: Path) -> Iterator[str]:
    """$WECOM_TEST_REDIS_URL, or the URL of a private server for the duration."""
    need_package()
    url = os.environ.get("WECOM_TEST_REDIS_URL")
    if url:
        yield url
        return
    with private_server(directory) as server:
        yield server.url


def fresh_prefix() -> str:
    """A key prefix no other test uses, so tests can share one Redis (even a real one)."""
    return f"wecom-test:{uuid.uuid4().hex[:12]}:"


def forget(url: str, prefix: str) -> None:
    """Delete the keys a test wrote under `prefix`."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
