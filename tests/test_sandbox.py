"""Tried as a new user would: `wecom serve` in sandbox mode, then `wecom simulate` and `wecom
doctor` against it, all as subprocesses on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from callback.cli import doctor, parser
from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorServer
from tests.conftest import free_port, wait_http

WECOM = shutil.which("wecom") or "wecom"
ROOT = Path(__file__).resolve().parent.parent


class Sandbox:
    """`wecom serve` in sandbox mode, as a subprocess in its own directory."""

    def __init__(self, cwd: Path, **env: str) -> None:
        self.port = free_port()
        self.cwd = cwd
        self.proc = subprocess.Popen(
            [WECOM, "serve", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"],
            cwd=cwd, env=clean_env() | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.output = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> float:
        """SIGTERM, as Ctrl-C or systemd would; the seconds it took to exit."""
        if self.proc.poll() is None:
            started = time.monotonic()
            os.killpg(self.proc.pid, signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=20)
            self.output = out.decode(errors="replace")
            return time.monotonic() - started
        return 0.0


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    server = Sandbox(tmp_path)
    try:
        wait_http(f"{server.base}/healthz", server.proc, timeout=30)
        yield server
    finally:
        server.stop()
    assert "SANDBOX" in server.output and "wecom simulate click MENU_HELP" in server.output


@pytest.fixture
def sandbox_server(sandbox: Sandbox) -> tuple[str, Path]:
    return sandbox.base, sandbox.cwd


def wecom(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WECOM, *args], cwd=cwd, env=clean_env() | env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


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


def test_simulate_finds_the_sandbox_and_takes_a_base_url(sandbox: Sandbox) -> None:
    """`wecom serve --bind` on any port, then `wecom simulate` from the same directory with no
    --url; elsewhere, --url takes the server's base URL as `wecom doctor --url` does."""
    assert sandbox.port != 8080
    text = wecom(sandbox.cwd, "simulate", "text", "help", "--wait", "0")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "passive reply (text):\nCommands:" in text.stdout
    elsewhere = sandbox.cwd / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".wecom-sandbox.json").write_text(
        (sandbox.cwd / ".wecom-sandbox.json").read_text()
    )
    click = wecom(elsewhere, "simulate", "click", "MENU_HELP", "--url", sandbox.base, "--wait", "0")
    assert "HTTP 200" in click.stdout and "Send 'help'" in click.stdout, click.stdout + click.stderr
    verify = wecom(elsewhere, "simulate", "verify", "--url", f"{sandbox.base}/")
    assert verify.returncode == 0 and "echo OK" in verify.stdout
    bot = wecom(sandbox.cwd, "simulate", "bot", "hi", "--timeout", "20")
    assert bot.returncode == 0 and "(finished in" in bot.stdout, bot.stdout + bot.stderr


def test_stopping_is_quick_and_clean(sandbox: Sandbox) -> None:
    run_file = sandbox.cwd / ".wecom-sandbox.run"
    assert json.loads(run_file.read_text())["server"] == sandbox.base
    took = sandbox.stop()
    assert sandbox.proc.returncode == 0
    assert took < 1.0, f"stopping took {took:.2f} s:\n{sandbox.output}"
    assert "SIGKILL" not in sandbox.output and "Traceback" not in sandbox.output
    assert not run_file.exists()  # the next `wecom simulate` does not try a stopped server
    stopped = wecom(sandbox.cwd, "simulate", "text", "help", "--url", sandbox.base)
    assert stopped.returncode == 2
    assert stopped.stderr.strip() == (
        f"error: no server at {sandbox.base}: is `wecom serve` running? Start it, or give "
        "its address with --url (a base URL like http://127.0.0.1:8080, or the whole callback "
        "URL)"
    )


def test_a_handler_still_running_does_not_get_the_worker_killed(tmp_path: Path) -> None:
    """A background handler that outlasts the stop is given the graceful timeout less a second,
    then left to its lease (it runs again after a restart): no SIGKILL from gunicorn."""
    server = Sandbox(tmp_path, ASSISTANT_DELAY_S="60")
    try:
        wait_http(f"{server.base}/healthz", server.proc, timeout=30)
        asked = wecom(tmp_path, "simulate", "text", "ask slowly", "--wait", "0")
        assert asked.returncode == 0, asked.stdout + asked.stderr
    finally:
        took = server.stop()
    assert 3.5 < took < 4.9, server.output
    assert "stopping with handlers still running (demo:msg:" in server.output
    assert "SIGKILL" not in server.output and "Traceback" not in server.output


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
        '[apps.hr]\ncorp_id = "ww1"\nagent_id = 1\nsecret = "Sekr1tNeverPrinted"\n'
        f'api_base_url = "http://127.0.0.1:{free_port()}"\n'
        f'[server]\nstate = "sqlite:///{tmp_path / "s.db"}"\n'
    )
    done = wecom(tmp_path, "doctor", "--config", str(config), "--timeout", "2")
    assert done.returncode == 1
    assert "FAIL token hr:" in done.stdout and "unreachable (ConnectionError)" in done.stdout
    # docs/deploy.md: doctor's output can go into tickets: never the secret, nor gettoken's URL
    assert "Sekr1tNeverPrinted" not in done.stdout + done.stderr
    assert "never prints the `gettoken` URL" in (ROOT / "docs" / "deploy.md").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[apps.hr]\ncorp_id = "ww1"\nagent_id = 1\ntoken = "t"\nencoding_aes_key = "x"\n'
    )
    done = wecom(tmp_path, "doctor", "--config", str(bad))
    assert done.returncode == 1 and "FAIL config: apps.hr.encoding_aes_key" in done.stdout


def test_doctor_says_which_keys_still_hold_the_examples_values(tmp_path: Path) -> None:
    assert wecom(tmp_path, "init").returncode == 0
    config = tmp_path / "config.toml"
    text = config.read_text(encoding="utf-8").replace(
        'api_base_url = "https://qyapi.weixin.qq.com"',
        f'api_base_url = "http://127.0.0.1:{free_port()}"',
    )  # nothing real is called
    config.write_text(text, encoding="utf-8")
    done = wecom(tmp_path, "doctor", "--timeout", "1")
    assert done.returncode == 1
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("FAIL config:"))
    for key in ("apps.hr.corp_id", "apps.hr.secret", "apps.hr.token", "webhooks.alerts.key"):
        assert key in line, line


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


def test_send_without_the_sandbox_server_names_the_fix(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # what a stopped sandbox leaves: no emulator
    done = wecom(tmp_path, "send", "text", "--to", "zhangsan", "hi", WECOM_SANDBOX_API_URL=nobody)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: no emulator at {nobody}: is `wecom serve` running?")


def test_send_to_an_unknown_app_lists_the_apps(tmp_path: Path) -> None:
    done = wecom(tmp_path, "send", "text", "--app", "hr", "--to", "zhangsan", "hi")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --app 'hr': no such application in the sandbox; the applications are demo, notices"
    )


def readme_commands(section: str) -> list[list[str]]:
    """The `wecom ...` commands of the README section's ```sh block, as argument lists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        rf"^## {re.escape(section)}\n.*?```sh\n(.*?)```", text, re.DOTALL | re.MULTILINE
    )
    assert found, f"README.md has no sh block under '## {section}'"
    lines = found.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.startswith("wecom ")]


def test_readme_send_examples_run_as_written_in_the_sandbox(sandbox: Sandbox) -> None:
    commands = readme_commands("Sending")
    assert [c[1] for c in commands] == ["send", "send", "recall"]
    msgid = ""
    for command in commands:
        args = [msgid if a == "MSGID" else a for a in command[1:]]
        done = wecom(sandbox.cwd, *args)
        assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
        found = re.search(r"^msgid: (\S+)$", done.stdout, re.MULTILINE)
        msgid = found.group(1) if found else msgid
    assert done.stdout.strip() == f"recalled {msgid}"


def test_readme_group_robot_examples_run_as_written_in_the_sandbox(sandbox: Sandbox) -> None:
    """The sandbox has the README's robot `alerts`, on its emulator."""
    commands = readme_commands("Group robots (消息推送)")
    assert [c[1:3] for c in commands] == [["send", "webhook"], ["send", "webhook"]]
    report = "# Weekly\n\n" + "\n".join(f"- item {n}: all good" for n in range(300))
    for command in commands:
        stdin = None
        if "<" in command:  # the shell's redirect: the file's text on stdin
            command, stdin = command[: command.index("<")], report
        done = subprocess.run(
            [WECOM, *command[1:]], cwd=sandbox.cwd, env=clean_env(), input=stdin,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
    emulator = json.loads((sandbox.cwd / ".wecom-sandbox.run").read_text())["emulator"]
    posted = requests.get(f"{emulator}/_emulator/webhooks/messages", timeout=10).json()
    assert posted[0]["body"]["text"] == {"content": "disk almost full", "mentioned_list": ["@all"]}
    parts = [p["body"]["markdown"]["content"] for p in posted[1:]]
    assert len(parts) >= 2 and "\n".join(parts).count("all good") == 300


def test_a_users_sandbox_suggests_its_own_routes_and_other_directories_are_told_why_not(
    tmp_path: Path,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "handlers").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "handlers" / "mybot.py").write_text(
        "from callback import Router\nrouter = Router()\n\n"
        "@router.text('hello')\ndef hello(message, ctx):\n    return 'Hi there'\n",
        encoding="utf-8",
    )
    server = Sandbox(project)
    try:
        wait_http(f"{server.base}/healthz", server.proc, timeout=30)
        here = wecom(project, "simulate", "text", "hello", "--wait", "0")
        assert "Hi there" in here.stdout, here.stdout + here.stderr
        there = wecom(elsewhere, "simulate", "text", "hello", "--url", server.base, "--wait", "0")
        assert there.returncode == 1 and "HTTP 403" in there.stdout
        assert "run this command in the directory where its `wecom serve` runs" in there.stdout
    finally:
        server.stop()
    assert "wecom routes" in server.output and "MENU_HELP" not in server.output


def test_simulate_waits_only_as_long_as_the_callback_needs(sandbox: Sandbox) -> None:
    started = time.monotonic()
    helped = wecom(sandbox.cwd, "simulate", "text", "help")  # a passive reply: nothing to wait for
    assert time.monotonic() - started < 2.0, helped.stdout
    assert "ask QUESTION" in helped.stdout  # the demo's help lists every command
    assert helped.stdout.endswith("send API (sandbox emulator):\n  (nothing)\n")
    started = time.monotonic()
    asked = wecom(sandbox.cwd, "simulate", "text", "ask why")  # the model takes 2 s
    took = time.monotonic() - started
    assert "-> zhangsan text: " in asked.stdout and "it depends." in asked.stdout, asked.stdout
    assert 2.0 < took < 6.0, asked.stdout


def test_gunicorn_without_a_config_says_it_is_the_sandbox(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env() | {"PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=30)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert "WARNING wecom.app: SANDBOX mode: no config file" in out
    assert f"generated credentials in {tmp_path}" in out
    assert f"handler modules (the sandbox's demo: there is no {tmp_path}/handlers)" in out
