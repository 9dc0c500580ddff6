"""`python -m callback.devtools.emulator`: argument parsing and a real foreground run."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from callback.devtools.emulator import DEFAULT_CORP_ID, main
from callback.devtools.emulator.cli import parse_app, parse_bind

ROOT = Path(__file__).resolve().parents[2]
"""The checkout under test: `python -m` run from here imports its code."""


def test_parse_app_and_bind() -> None:
    app = parse_app("crm:ww1:1000010:s3cret")
    assert (app.name, app.corp_id, app.agent_id, app.secret) == ("crm", "ww1", 1000010, "s3cret")
    assert not app.is_miniprogram
    mini = parse_app("mp:ww1:1000011:s:mini=wxa,wxb")
    assert mini.is_miniprogram and mini.linked_appids == ("wxa", "wxb")
    assert parse_bind("0.0.0.0:8090") == ("0.0.0.0", 8090)
    assert parse_bind("[::1]:0") == ("::1", 0)
    for bad in ("a:b:c", "a:b:x:s", "a:b:1:s:appids=x", "a:b:1:s:mini="):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_app(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_bind("8090")


def test_main_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--app", "nonsense"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["--app", "a:ww:1:s", "--app", "b:ww:1:t"])


def test_module_runs_in_the_foreground() -> None:
    command = [
        sys.executable,
        "-m",
        "callback.devtools.emulator",
        "--bind",
        "127.0.0.1:0",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split()[-1]
        assert banner.startswith("WeCom API emulator listening on http://127.0.0.1:")
        apps = [process.stdout.readline() for _ in range(2)]
        assert "agentid=1000002" in apps[0] and "miniprogram=wx_emulator_miniprogram" in apps[1]
        params = {"corpid": DEFAULT_CORP_ID, "corpsecret": "emulator-secret"}
        answer = requests.get(f"{url}/cgi-bin/gettoken", params=params, timeout=5).json()
        assert answer["errcode"] == 0
        control = process.stdout.readline().split()  # the control URL it advertises answers
        assert control[:2] == ["control", "API:"]
        index = requests.get(control[2], timeout=5)
        assert index.status_code == 200, index.text
        assert index.json()["docs"] == "callback/devtools/emulator/README.md"
        assert {"GET /_emulator/messages", "POST /_emulator/fail"} <= set(index.json()["routes"])
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_module_serves_the_long_connection_too() -> None:
    command = [sys.executable, "-m", "callback.devtools.emulator", "--bind", "127.0.0.1:0"]
    command += ["--aibot-ws", "127.0.0.1:0", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        assert lines[3].startswith("AI bot long connection on ws://127.0.0.1:")
        ws_url = lines[3].split()[-1]
        bot_id, secret = (part.split("=", 1)[1] for part in lines[4].split())
        frame = {"cmd": "aibot_subscribe", "headers": {"req_id": "r1"}}
        frame["body"] = {"bot_id": bot_id, "secret": secret}
        with connect(ws_url, open_timeout=5) as websocket:
            websocket.send(json.dumps(frame))
            assert json.loads(websocket.recv(timeout=5))["errcode"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
