"""A sandbox server for the console's tests: `wecom serve` with no config, on a free port, run
from this checkout (PYTHONPATH) in a directory of its own; and its credentials, to check that
the console never shows them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_http


@dataclass(frozen=True)
class Sandbox:
    url: str
    directory: Path

    def credentials(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.directory / ".wecom-sandbox.json").read_text())
        return data

    def state(self) -> dict:  # type: ignore[type-arg]
        response = requests.get(f"{self.url}/_console/api/state", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def act(self, action: str, **body: object) -> requests.Response:
        return requests.post(f"{self.url}/_console/api/{action}", json=body, timeout=20)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """`wecom serve` in sandbox mode (2 workers), the assistant answering in 3 s."""
    directory = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env |= {"PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    env |= {"ASSISTANT_DELAY_S": "3"}
    log = (directory / "server.log").open("wb")  # a file: a pipe nobody reads would fill up
    proc = subprocess.Popen(
        [sys.executable, "-m", "callback.cli", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"],
        cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=30)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{(directory / 'server.log').read_text()}") from exc
        yield Sandbox(f"http://127.0.0.1:{port}", directory)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
