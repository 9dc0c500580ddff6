"""Shared fixtures: the official vectors, a test app's settings, free ports and real servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from callback.config import Settings, from_mapping
from callback.devtools.emulator import DEFAULT_CORP_ID, DEFAULT_SECRET, Emulator, EmulatorServer
from callback.devtools.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
LOCAL_VECTORS = Path(__file__).parent / "data" / "crypto_vectors.json"

TOKEN = "Tok3nForTests"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP_ID = "wwtestcorp0001"
AGENT_ID = 1000002


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in its own directory, so state files and sandbox files stay out of the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def vectors() -> dict[str, object]:
    """The official WeCom crypto vectors (pinned copy in tests/data)."""
    data: dict[str, object] = json.loads(LOCAL_VECTORS.read_text(encoding="utf-8"))
    return data


def app_table(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {
        "corp_id": CORP_ID,
        "agent_id": AGENT_ID,
        "secret": "test-secret",
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
    }
    table.update(overrides)
    return table


def emulator_settings(api_url: str, **server: object) -> Settings:
    """The app `hr` as the emulator knows it (its default corp id and secret), sending to
    `api_url`; `server` is the [server] table."""
    hr = app_table(corp_id=DEFAULT_CORP_ID, secret=DEFAULT_SECRET, api_base_url=api_url)
    return from_mapping({"apps": {"hr": hr}, "server": server})


def make_settings(**server: object) -> Settings:
    return from_mapping({"apps": {"hr": app_table()}, "server": {"state": "memory://"} | server})


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def sim() -> Simulator:
    return Simulator.create(TOKEN, AES_KEY, CORP_ID, agent_id=AGENT_ID)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One WeCom emulator on 127.0.0.1 for the session (tests/emulator has its own)."""
    with EmulatorServer(Emulator()) as running:
        yield running


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Emulator:
    """The session's emulator, reset: no apps changed, no records, no faults."""
    emulator_server.emulator.reset()
    return emulator_server.emulator


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` holds, or fail the test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    """Wait until `url` answers (any status), or fail with the process output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def gunicorn_server(tmp_path: Path) -> Iterator[object]:
    """A factory: start `gunicorn wsgi:app` on a free port with a config; stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(config_text: str, workers: int = 2, env: dict[str, str] | None = None) -> str:
        config = tmp_path / f"config-{len(procs)}.toml"
        config.write_text(config_text, encoding="utf-8")
        port = free_port()
        full_env = os.environ | {"WECOM_CONFIG": str(config)} | (env or {})
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "wsgi:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--graceful-timeout",
                "2",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 a server started with start_new_session=True: the master and every worker."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop such a server as an operator would (SIGTERM), and kill it if it hangs."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_group(proc)
