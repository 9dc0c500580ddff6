"""Tried as a new user would: `wecom serve` in sandbox mode, then `wecom simulate` and `wecom
doctor` against it, all as subprocesses on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from callback.cli import doctor, parser
from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorServer
from tests.conftest import free_port, wait_http

WECOM = shutil.which("wecom") or "wecom"


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    proc = subprocess.Popen(
        [WECOM, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=30)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        banner = out.decode(errors="replace")
        assert "SANDBOX" in banner and "wecom simulate click MENU_HELP" in banner


def wecom(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    return subprocess.run(
        [WECOM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_then_simulate_like_a_new_user(sandbox_server: tuple[str, Path]) -> None:
    base, cwd = sandbox_server
    url = f"{base}/wecom/callback/demo"
    click = wecom(cwd, "simulate", "click", "MENU_HELP", "--url", url, "--wait", "0")
    assert click.returncode == 0, click.stderr
    assert "HTTP 200" in click.stdout and "Send 'help' to see what I can do." in click.stdout
    text = wecom(cwd, "simulate", "text", "echo 你好", "--url", url, "--wait", "0")
    assert text.returncode == 0 and "passive reply (text):\n你好" in text.stdout
    booked = wecom(cwd, "simulate", "click", "MENU_BOOK_ROOM", "--url", url, "--wait", "1")
    assert "Room 402 is booked" in booked.stdout
    assert "miniprogram_notice" in booked.stdout and "会议室" in booked.stdout  # via the emulator
    verify = wecom(cwd, "simulate", "verify", "--url", url)
    assert verify.returncode == 0 and "echo OK" in verify.stdout


def test_simulate_bot_prints_the_stream_as_it_grows(sandbox_server: tuple[str, Path]) -> None:
    base, cwd = sandbox_server
    url = f"{base}/wecom/bot/assistant"
    done = wecom(cwd, "simulate", "bot", "what is a stream?", "--url", url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("HTTP 200")
    assert "You asked: 'what is a stream?'. Here is a considered answer: it depends." in done.stdout
    assert lines[-1].startswith("(finished in")


def test_doctor_against_the_sandbox(sandbox_server: tuple[str, Path]) -> None:
    base, cwd = sandbox_server
    done = wecom(cwd, "doctor", "--url", base)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok   config: sandbox")
    assert any(line.startswith("ok   token demo: fetched") for line in lines)
    assert any(line.startswith("ok   callback demo:") for line in lines)
    assert any(line.startswith("ok   clock:") for line in lines)
    assert lines[-1].startswith("ok   state store")


def test_doctor_names_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[apps.hr]\ncorp_id = "ww1"\nagent_id = 1\nsecret = "s"\n'
        'api_base_url = "http://127.0.0.1:9"\n'
        f'[server]\nstate = "sqlite:///{tmp_path / "s.db"}"\n'
    )
    done = wecom(tmp_path, "doctor", "--config", str(config), "--timeout", "2")
    assert done.returncode == 1
    assert "FAIL token hr:" in done.stdout and "unreachable" in done.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[apps.hr]\ncorp_id = "ww1"\nagent_id = 1\ntoken = "t"\nencoding_aes_key = "x"\n'
    )
    done = wecom(tmp_path, "doctor", "--config", str(bad))
    assert done.returncode == 1 and "FAIL config: apps.hr.encoding_aes_key" in done.stdout


def test_doctor_explains_wecom_errcodes(tmp_path: Path) -> None:
    with EmulatorServer(Emulator()) as emulator:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[apps.hr]\ncorp_id = "{DEFAULT_CORP_ID}"\nagent_id = 1000002\nsecret = "wrong"\n'
            f'api_base_url = "{emulator.url}"\n'
            f'[server]\nstate = "sqlite:///{tmp_path / "s.db"}"\n'
        )
        lines: list[str] = []
        args = parser().parse_args(["doctor", "--config", str(config)])
        assert doctor.cmd_doctor(args, out=lines.append) == 1
    assert any("FAIL token hr: errcode 40001: wrong secret" in line for line in lines)
