"""Scale-out, proven with real processes on 127.0.0.1: two gunicorn servers ("hosts") sharing a
Redis state store, Celery workers on the same Redis, the WeCom emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from callback.devtools.emulator import DEFAULT_CORP_ID, DEFAULT_SECRET, Emulator, EmulatorServer
from callback.devtools.simulator import Simulator
from tests.conftest import AES_KEY, ROOT, TOKEN, eventually, free_port, wait_http
from tests.redis_server import RedisServer, binary, need_package
from tests.send_burst import burst

USER = "zhaoliu"


def env_for(config: Path, log: Path) -> dict[str, str]:
    return os.environ | {
        "WECOM_CONFIG": str(config),
        "PROOF_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "proof"), str(ROOT)]),
    }


class Deployment:
    """Redis, N web nodes (gunicorn, 2 workers each) and Celery workers, all started here."""

    def __init__(self, tmp: Path, api_url: str) -> None:
        need_package()
        self.tmp = tmp
        self.redis = RedisServer(tmp, binary())
        self.redis.start()
        self.log = tmp / "handler.log"
        self.log.touch()
        self.config = tmp / "config.toml"
        self.config.write_text(
            f"""
[server]
state = "{self.redis.url}"
queue = "celery"
handlers = ["proof_handlers"]
lease_s = 2

[apps.hr]
corp_id = "{DEFAULT_CORP_ID}"
agent_id = 1000002
secret = "{DEFAULT_SECRET}"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base_url = "{api_url}"
""",
            encoding="utf-8",
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def web(self) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--timeout", "60", "--graceful-timeout", "2"],
            cwd=ROOT, env=env_for(self.config, self.log), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/wecom/callback/hr"
        self.urls.append(url)
        return url

    def worker(self) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "callback.worker", "worker", "-Q", "wecom",
             "--concurrency", "2", "--loglevel", "info", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=self.tmp, env=env_for(self.config, self.log), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """kill -9 the process and its children (its whole process group)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.redis.stop()

    def lines(self, prefix: str) -> list[str]:
        return [ln for ln in self.log.read_text().splitlines() if ln.startswith(prefix)]


@pytest.fixture
def deployment(tmp_path: Path, emulator_server: EmulatorServer) -> Iterator[Deployment]:
    emulator_server.emulator.reset()
    made = Deployment(tmp_path, emulator_server.url)
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def sim() -> Simulator:
    return Simulator.create(TOKEN, AES_KEY, DEFAULT_CORP_ID, agent_id=1000002, user=USER)


def post(sim: Simulator, url: str, fields: dict[str, Any]) -> tuple[int, bytes]:
    query, body = sim.post(fields)
    response = requests.post(url, params=query, data=body, timeout=8)
    reply = sim.open_reply(response.content) if response.status_code == 200 else response.content
    return response.status_code, reply


def pushed(emulator: Emulator) -> list[str]:
    return [m.body["text"]["content"] for m in emulator.messages(touser=USER)]


def test_a_retries_spread_over_two_hosts_run_once_and_reply_once(
    deployment: Deployment, sim: Simulator, emulator_server: EmulatorServer
) -> None:
    host_a, host_b = deployment.web(), deployment.web()
    deployment.worker()
    fields = sim.text("slow")
    answers: list[tuple[int, bytes]] = []
    timers = [
        threading.Timer(delay, lambda url=url: answers.append(post(sim, url, fields)))
        for delay, url in ((0, host_a), (5, host_b), (10, host_a))
    ]
    for t in timers:
        t.start()
    for t in timers:
        t.join()
    eventually(lambda: len(pushed(emulator_server.emulator)) >= 1, 15)
    time.sleep(1)
    assert answers == [(200, b"")] * 3
    assert pushed(emulator_server.emulator) == ["slow reply"]
    assert len(deployment.lines("slow start")) == 1


def test_b_eight_processes_one_gettoken(
    deployment: Deployment, emulator_server: EmulatorServer
) -> None:
    burst(emulator_server.url, deployment.redis.url, processes=8, threads=4)
    emulator = emulator_server.emulator
    assert sum(emulator.stats().gettoken.values()) == 1
    assert len(emulator.messages()) == 32


def test_c_kill_9_of_the_worker_mid_task_then_a_new_worker(
    deployment: Deployment, sim: Simulator, emulator_server: EmulatorServer
) -> None:
    host = deployment.web()
    first = deployment.worker()
    assert post(sim, host, sim.text("long job")) == (200, b"")
    eventually(lambda: len(deployment.lines("long job start")) == 1, 20)
    deployment.kill(first)  # mid-task
    assert deployment.lines("long job end") == []
    deployment.worker()
    eventually(lambda: len(pushed(emulator_server.emulator)) >= 1, 30)
    time.sleep(2)
    assert pushed(emulator_server.emulator) == ["long job reply"]
    assert len(deployment.lines("long job end")) == 1


def test_d_redis_restart_answers_503_then_recovers(
    deployment: Deployment, sim: Simulator, emulator_server: EmulatorServer
) -> None:
    host = deployment.web()
    deployment.worker()
    assert post(sim, host, sim.text("quick job")) == (200, b"")
    eventually(lambda: pushed(emulator_server.emulator) == ["quick job reply"], 20)
    deployment.redis.stop()
    fields = sim.text("quick job again")  # another text: WeCom would merge identical sends
    status, body = post(sim, host, fields)
    assert status == 503 and b"state store" in body  # WeCom retries a 503: nothing is lost
    health = requests.get(host.replace("/wecom/callback/hr", "/healthz"), timeout=10)
    assert health.status_code == 503
    deployment.redis.start()  # same port, empty (no persistence)
    eventually(lambda: post(sim, host, fields)[0] == 200, 20)  # WeCom's retry goes through
    expected = ["quick job reply", "quick job again reply"]
    eventually(lambda: pushed(emulator_server.emulator) == expected, 30)
    assert len(deployment.lines("quick job")) == 2
