"""The `wecom` command: send (validated, dry run), recall, routes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callback.cli import main
from callback.devtools.emulator import (
    DEFAULT_CORP_ID,
    DEFAULT_MINIPROGRAM_APPID,
    DEFAULT_MINIPROGRAM_SECRET,
    DEFAULT_SECRET,
    EmulatorServer,
)


@pytest.fixture
def config(emulator_server: EmulatorServer, tmp_path: Path) -> str:
    emulator_server.emulator.reset()
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
state = "sqlite:///{tmp_path / "state.db"}"
handlers = ["callback.demo"]

[apps.hr]
corp_id = "{DEFAULT_CORP_ID}"
agent_id = 1000002
secret = "{DEFAULT_SECRET}"
api_base_url = "{emulator_server.url}"

[apps.notices]
corp_id = "{DEFAULT_CORP_ID}"
agent_id = 1000003
secret = "{DEFAULT_MINIPROGRAM_SECRET}"
api_base_url = "{emulator_server.url}"
""",
        encoding="utf-8",
    )
    return str(path)


NOTICE_ARGS = [
    "send", "miniprogram-notice", "--app", "notices", "--to", "zhangsan,lisi",
    "--appid", DEFAULT_MINIPROGRAM_APPID, "--page", "pages/room?id=402",
    "--title", "会议室预订成功通知", "--description", "4月27日 16:16",
    "--item", "会议室=402", "--item", "会议地点=广州TIT-402会议室", "--emphasis-first-item",
]  # fmt: skip


def test_notice_dry_run_prints_body_and_sends_nothing(
    config: str, emulator_server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*NOTICE_ARGS, "--config", config, "--dry-run"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["msgtype"] == "miniprogram_notice" and body["touser"] == "zhangsan|lisi"
    assert "agentid" not in body and body["miniprogram_notice"]["emphasis_first_item"] is True
    assert body["miniprogram_notice"]["content_item"][1] == {
        "key": "会议地点",
        "value": "广州TIT-402会议室",
    }
    assert emulator_server.emulator.stats().calls == {}


def test_notice_send_prints_msgid(
    config: str, emulator_server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*NOTICE_ARGS, "--config", config, "--to", "zhangsan,invalid_x"]) == 0
    out = capsys.readouterr().out
    (record,) = emulator_server.emulator.messages()
    assert f"msgid: {record.msgid}" in out and "invalid users: invalid_x" in out


def test_validation_error_exits_nonzero_and_sends_nothing(
    config: str, emulator_server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*NOTICE_ARGS, "--config", config, "--title", "短"]
    assert main(args) == 2
    assert "miniprogram_notice.title" in capsys.readouterr().err
    assert emulator_server.emulator.stats().calls == {}


def test_text_card_recall_and_api_error(
    config: str, emulator_server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", config, "--app", "hr", "--to", "zhangsan"]
    assert main(["send", "text", "hello from the CLI", *base]) == 0
    assert main(["send", "template-card", *base, "--task-id", "t-9", "--title", "Approve?",
                 "--button", "Yes=YES", "--button", "No=NO"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "response_code:" in out
    msgid = emulator_server.emulator.messages()[0].msgid
    assert main(["recall", "--config", config, "--app", "hr", "--", msgid]) == 0
    assert emulator_server.emulator.messages()[0].recalled
    # an API error exits non-zero with the errcode and its hint
    assert main(["send", "text", "x", "--config", config, "--app", "hr", "--to", "invalid_a"]) == 2
    assert "81013" in capsys.readouterr().err


def test_routes_lists_handlers_in_order(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].endswith("callback.demo.fallback.fallback")
    assert any("click('MENU_HELP')" in line for line in lines)


@pytest.mark.parametrize("command", [["wecom"], [sys.executable, "-m", "callback.cli"]])
def test_console_script_runs(config: str, command: list[str]) -> None:
    executable = shutil.which(command[0]) or command[0]
    done = subprocess.run(
        [executable, *command[1:], "send", "text", "hi", "--config", config, "--to", "u1",
         "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == {"content": "hi"}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["send", "template-card", "--card", "missing.json", "--to", "u", "--dry-run"],
         "missing.json: No such file"),
        (["send", "template-card", "--card", "bad.json", "--to", "u", "--dry-run"], "not JSON"),
    ],
)  # fmt: skip
def test_a_bad_file_argument_is_a_message_not_a_traceback(
    config: str, argv: list[str], says: str, capsys: pytest.CaptureFixture[str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert main([*argv, "--config", config]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--bind", "127.0.0.1:99999"], "port from 1 to 65535"),
        (["serve", "--workers", "0"], "expected at least 1"),
        (["doctor", "--timeout", "-1"], "expected more than 0 seconds"),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_option(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and says in err and f"argument {argv[1]}" in err


def test_send_with_only_bots_configured_says_there_is_no_application(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[bots.b]\nmode = "connection"\nbot_id = "x"\nsecret = "y"\n', encoding="utf-8")
    assert main(["send", "text", "hi", "--to", "u", "--dry-run", "--config", str(path)]) == 2
    assert "no applications are configured" in capsys.readouterr().err


def test_doctor_never_prints_the_state_stores_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[apps.hr]\ncorp_id = "ww1"\nagent_id = 1\ntoken = "t"\n'
        'encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"\n'
        'api_base_url = "http://127.0.0.1:9"\n'
        '[server]\nstate = "redis://:hunter2pw@127.0.0.1:9/0"\n',
        encoding="utf-8",
    )  # fmt: skip
    main(["doctor", "--config", str(path), "--timeout", "0.5"])
    out = capsys.readouterr()
    assert "state store redis://127.0.0.1:9/0" in out.out + out.err
    assert "hunter2pw" not in out.out + out.err
