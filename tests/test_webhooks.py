"""Group robots (消息推送): limits checked before sending, long markdown split without breaking a
code block or a table, the 20-a-minute window kept across processes, the key never shown."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.config import WebhookSettings
from callback.errors import ApiError, RateLimited, Unreachable, ValidationError
from callback.outbound.webhooks import (
    MARKDOWN_LIMIT,
    WebhookClient,
    WebhookImage,
    WebhookMarkdown,
    WebhookNews,
    WebhookTemplateCard,
    WebhookText,
    article,
    split_markdown,
)
from callback.store import MemoryStore, SqliteStore

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
HOOKS = {"alerts": WebhookSettings("alerts", KEY, "http://wecom.invalid")}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_limits_are_checked_when_built() -> None:
    WebhookText("字" * 682)  # 2046 bytes
    with pytest.raises(ValidationError, match=r"text.content: 2049 bytes, at most 2048"):
        WebhookText("a" * 2049)
    long = WebhookMarkdown("a" * 4097)  # any length is built; each post must fit
    with pytest.raises(ValidationError, match=r"markdown.content: 4097 bytes, at most 4096"):
        long.body()
    assert [len(part.body()["markdown"]["content"]) for part in long.parts()] == [4096, 1]
    with pytest.raises(ValidationError, match="at most 2 MB"):
        WebhookImage(PNG + b"\x00" * (2 * 1024 * 1024))
    with pytest.raises(ValidationError, match="JPG or PNG"):
        WebhookImage(b"GIF89a....")
    with pytest.raises(ValidationError, match=re.escape("news.articles: 9 articles, 1 to 8")):
        WebhookNews(tuple(article(f"t{n}", "https://x") for n in range(9)))
    with pytest.raises(ValidationError, match=re.escape("news.articles: 0 articles")):
        WebhookNews(())
    with pytest.raises(ValidationError, match="text_notice or news_notice"):
        WebhookTemplateCard({"card_type": "button_interaction"})


def test_bodies_are_what_wecom_takes() -> None:
    assert WebhookText("hi", ("@all",)).body() == {
        "msgtype": "text", "text": {"content": "hi", "mentioned_list": ["@all"]},
    }  # fmt: skip
    image = WebhookImage(PNG).body()["image"]
    assert image["md5"] == "567a759ec728f037fa203dbd31b3e48b"  # md5sum of those 24 bytes
    news = WebhookNews((article("T", "https://x", "d", "https://p"),)).body()
    one = {"title": "T", "url": "https://x", "description": "d", "picurl": "https://p"}
    assert news == {"msgtype": "news", "news": {"articles": [one]}}


# -- long markdown ----------------------------------------------------------------------------


def fences_balanced(part: str) -> bool:
    return len(re.findall(r"^\s*```", part, re.MULTILINE)) % 2 == 0


def test_a_long_code_block_is_closed_and_reopened_and_a_table_repeats_its_header() -> None:
    code = "```python\n" + "".join(f"print({n})  # a line of code\n" for n in range(400)) + "```"
    table = "| name | value |\n|---|---|\n" + "".join(
        f"| n{n} | {'v' * 40} |\n" for n in range(200)
    )
    text = "# Report\n\nIntro.\n\n" + code + "\n\n" + table + "\nThe end."
    parts = split_markdown(text)
    assert len(parts) > 3 and all(len(p.encode()) <= MARKDOWN_LIMIT for p in parts)
    assert all(fences_balanced(p) for p in parts)
    code_parts = [p for p in parts if "```python" in p]
    assert len(code_parts) >= 2 and all(p.count("```python") == 1 for p in code_parts)
    table_parts = [p for p in parts if "| n" in p]
    assert all("| name | value |\n|---|---|\n" in p for p in table_parts)  # header repeated
    lines = [ln for p in parts for ln in p.splitlines()]
    for n in range(400):  # every line is there, whole
        assert f"print({n})  # a line of code" in lines
    for n in range(200):
        assert f"| n{n} | {'v' * 40} |" in lines
    assert parts[0].startswith("# Report") and parts[-1].endswith("The end.")


def test_a_block_fenced_by_four_backticks_keeps_the_three_backtick_lines_inside_it() -> None:
    inner = "\n".join(["```python", "print(1)", "```"] * 40)  # an example of markdown, quoted
    text = "Example:\n\n````markdown\n" + inner + "\n````\n\nEnd."
    parts = split_markdown(text, limit=400)
    assert len(parts) >= 3
    assert all(p.count("````") == 2 for p in parts)  # each part opens and closes the outer block
    body = [ln for p in parts for ln in p.splitlines() if not ln.startswith("````")]
    assert body == ["Example:", "", *inner.splitlines(), "", "End."]  # all there, in order


def test_short_markdown_is_one_part_and_a_long_line_is_cut_on_a_character() -> None:
    assert split_markdown("# a\n\nb") == ["# a\n\nb"]
    parts = split_markdown("字" * 3000)
    assert "".join(parts) == "字" * 3000 and all(len(p.encode()) <= MARKDOWN_LIMIT for p in parts)


blocks = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="`|\r"),
            min_size=1, max_size=300).map(lambda s: s.replace("\n\n", "\n") + "\n\n"),
    st.integers(1, 120).map(
        lambda n: "```\n" + "".join(f"code {i}\n" for i in range(n)) + "```\n\n"
    ),
    st.integers(1, 120).map(
        lambda n: "| a | b |\n|---|---|\n" + "".join(f"| {i} | x |\n" for i in range(n)) + "\n"
    ),
)  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(blocks, min_size=1, max_size=30), st.integers(300, MARKDOWN_LIMIT))
def test_every_part_fits_and_no_line_is_lost(parts_in: list[str], limit: int) -> None:
    text = "".join(parts_in)
    parts = split_markdown(text, limit)
    assert all(len(p.encode()) <= limit for p in parts)
    assert all(fences_balanced(p) for p in parts)
    shown = [ln for p in parts for ln in p.splitlines()]
    for line in text.splitlines():
        if line.strip() and len(line.encode()) < limit // 2:
            assert line in shown  # short lines are never cut


# -- sending ----------------------------------------------------------------------------------


class RobotSession(requests.Session):
    """WeCom's webhook/send as a test double of requests (not of our code): records bodies."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.posted: list[dict[str, Any]] = []
        self.answer = answer or {"errcode": 0, "errmsg": "ok"}

    def post(self, url: str, **kw: Any) -> requests.Response:  # type: ignore[override]
        assert kw["params"]["key"] == KEY
        self.posted.append(kw["json"])
        response = requests.Response()
        response.status_code = 200
        response._content = __import__("json").dumps(self.answer).encode()
        return response


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_robots_window_is_waited_for_never_dropped(tmp_path: Path) -> None:
    clock = Clock()
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    path = str(tmp_path / "s.db")
    one, two = SqliteStore(path, clock), SqliteStore(path, clock)  # two processes' stores
    session = RobotSession()
    first = WebhookClient(HOOKS, one, session=session, sleep=sleep)
    ops = {"ops": WebhookSettings("ops", KEY, "http://wecom.invalid")}  # the same robot
    second = WebhookClient(ops, two, session=session, sleep=sleep)
    for n in range(20):  # two names for one robot, in two processes: one window
        client, name = (first, "alerts") if n % 2 else (second, "ops")
        client.send(name, WebhookText(f"m{n}"))
    assert waited == []
    with pytest.raises(RateLimited, match="20 messages a minute"):
        first.send("alerts", WebhookText("21st"), wait=False)
    second.send("ops", WebhookText("21st"))  # waits out the minute, then posts
    assert len(waited) == 1 and 0 < waited[0] <= 60
    assert [b["text"]["content"] for b in session.posted] == [f"m{n}" for n in range(20)] + ["21st"]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert KEY.encode() not in stored  # the window is named by a digest of the key


def test_errors_name_the_robot_never_the_key() -> None:
    answer = {"errcode": 93000, "errmsg": "invalid key"}
    refused = WebhookClient(HOOKS, MemoryStore(), session=RobotSession(answer))
    with pytest.raises(ApiError) as err:
        refused.send("alerts", WebhookText("x"))
    assert "alerts" in str(err.value) and KEY not in str(err.value)
    down = WebhookClient({"alerts": WebhookSettings("alerts", KEY, "http://127.0.0.1:9")},
                         MemoryStore())  # fmt: skip
    with pytest.raises(Exception) as err2:
        down.send("alerts", WebhookText("x"))
    assert KEY not in str(err2.value) and KEY not in repr(err2.value.__cause__)
    assert KEY not in repr(HOOKS["alerts"])


# -- against the emulator's group robots (written from the protocol notes, section 6) ----------


def _robot(emulator_server: Any) -> dict[str, WebhookSettings]:
    from callback.devtools.emulator import DEFAULT_WEBHOOK_KEY

    return {"alerts": WebhookSettings("alerts", DEFAULT_WEBHOOK_KEY, emulator_server.url)}


def test_every_type_reaches_the_robot_as_wecom_takes_it(
    emulator_server: Any, emulator: Any
) -> None:
    from callback.outbound.webhooks import WebhookFile

    client = WebhookClient(_robot(emulator_server), MemoryStore())
    card = {"card_type": "text_notice", "main_title": {"title": "Deploy done"},
            "card_action": {"type": 1, "url": "https://example.com"}}  # fmt: skip
    media_id = client.upload("alerts", "build.log", b"line\n" * 100)
    sent = [
        WebhookText("disk almost full", ("@all",)),
        WebhookMarkdown("**build** passed"),
        WebhookImage(PNG),
        WebhookNews((article("Release 1.2", "https://example.com/1.2"),)),
        WebhookFile(media_id),
        WebhookTemplateCard(card),
    ]
    for message in sent:
        client.send("alerts", message)
    shown = emulator.webhook_messages(shown=True)
    assert [r.msgtype for r in shown] == ["text", "markdown", "image", "news", "file",
                                          "template_card"]  # fmt: skip
    assert all(r.errcode == 0 for r in emulator.webhook_messages())  # nothing refused
    assert shown[0].body["text"]["mentioned_list"] == ["@all"]


def test_a_long_report_arrives_in_parts_with_its_code_block_intact(
    emulator_server: Any, emulator: Any
) -> None:
    client = WebhookClient(_robot(emulator_server), MemoryStore())
    code = "\n".join(f"step {n}: ok" for n in range(600))
    report = f"# Nightly\n\n```\n{code}\n```\n\nAll green."
    client.send_markdown("alerts", report)
    parts = [r.body["markdown"]["content"] for r in emulator.webhook_messages(shown=True)]
    assert len(parts) > 1 and all(len(p.encode()) <= MARKDOWN_LIMIT for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)  # every part's block is closed
    lines = [line for p in parts for line in p.splitlines() if line.startswith("step ")]
    assert lines == code.splitlines()  # nothing lost, nothing repeated


def test_a_handlers_post_goes_once_though_wecom_retries_the_callback(
    emulator_server: Any, emulator: Any, tmp_path: Path
) -> None:
    from callback import Router
    from callback.app import create_app
    from callback.config import from_mapping
    from callback.devtools.emulator import DEFAULT_CORP_ID, DEFAULT_SECRET, DEFAULT_WEBHOOK_KEY
    from callback.devtools.simulator import Simulator
    from tests.conftest import AES_KEY, TOKEN, app_table, eventually

    router = Router()

    rows = [f"| step {n} | ok |" for n in range(400)]
    report = "Deployed, step by step:\n| step | result |\n|---|---|\n" + "\n".join(rows)

    @router.text("deploy")
    def deploy(message, ctx):  # type: ignore[no-untyped-def]
        ctx.send(WebhookText(f"{message.from_user} deployed"), webhook="alerts")
        ctx.send(WebhookMarkdown(report), webhook="alerts")  # over 4096 bytes: in parts
        return "posted"

    hr = app_table(corp_id=DEFAULT_CORP_ID, secret=DEFAULT_SECRET, api_base_url=emulator_server.url)
    hooks = {"alerts": {"key": DEFAULT_WEBHOOK_KEY, "api_base_url": emulator_server.url}}
    settings = from_mapping({"apps": {"hr": hr}, "webhooks": hooks,
                             "server": {"state": f"sqlite:///{tmp_path / 's.db'}"}})  # fmt: skip
    app = create_app(settings, router=router)
    try:
        c = app.test_client()
        sim = Simulator.create(TOKEN, AES_KEY, DEFAULT_CORP_ID, agent_id=1000002)
        fields = sim.text("deploy", user="lisi")
        for _ in range(3):  # the original and WeCom's two retries, each re-encrypted
            query, body = sim.post(fields)
            assert c.post("/wecom/callback/hr", query_string=query, data=body).status_code == 200
        eventually(lambda: len(emulator.webhook_messages(shown=True)) >= 3)
        time.sleep(0.5)
        posted = emulator.webhook_messages()
        assert posted[0].body["text"]["content"] == "lisi deployed"
        parts = [r.body["markdown"]["content"].splitlines() for r in posted[1:]]
        assert len(parts) >= 2 and parts[0][0] == "Deployed, step by step:"
        assert all(p[p.index("| step | result |") + 1] == "|---|---|" for p in parts)  # a table
        assert [
            line for p in parts for line in p if line.startswith("| step ") and "ok" in line
        ] == rows
    finally:
        app.extensions["wecom.delivery"].stop()


def test_wecom_send_webhook_posts_and_never_prints_the_key(
    emulator_server: Any, emulator: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from callback.devtools.emulator import DEFAULT_WEBHOOK_KEY

    (tmp_path / "config.toml").write_text(
        f'[server]\nstate = "sqlite:///{tmp_path / "s.db"}"\n\n[webhooks.alerts]\n'
        f'key = "{DEFAULT_WEBHOOK_KEY}"\napi_base_url = "{emulator_server.url}"\n'
    )
    run = subprocess.run(
        [sys.executable, "-m", "callback.cli", "send", "webhook", "--config", "config.toml",
         "--hook", "alerts", "--markdown", "-"],
        cwd=tmp_path, input="**release** 1.2 is out", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "posted markdown to alerts" in run.stdout
    assert DEFAULT_WEBHOOK_KEY not in run.stdout + run.stderr
    shown = emulator.webhook_messages(shown=True)
    assert [r.body["markdown"]["content"] for r in shown] == ["**release** 1.2 is out"]


def test_wecom_send_webhook_takes_every_type(
    emulator_server: Any, emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from callback.cli import main
    from callback.devtools.emulator import DEFAULT_WEBHOOK_KEY

    (tmp_path / "config.toml").write_text(
        f'[server]\nstate = "sqlite:///{tmp_path / "s.db"}"\n\n[webhooks.alerts]\n'
        f'key = "{DEFAULT_WEBHOOK_KEY}"\napi_base_url = "{emulator_server.url}"\n'
    )
    (tmp_path / "chart.png").write_bytes(PNG)
    (tmp_path / "build.log").write_text("ok\n" * 50)
    card = {"card_type": "text_notice", "main_title": {"title": "Deploy done"},
            "card_action": {"type": 1, "url": "https://example.com"}}  # fmt: skip
    (tmp_path / "card.json").write_text(json.dumps(card))
    base = ["send", "webhook", "--config", str(tmp_path / "config.toml"), "--hook", "alerts"]
    for extra in (["disk full", "--mention", "@all"], ["--markdown", "**ok**"],
                  ["--image", "chart.png"], ["--news", "Release=https://example.com/r"],
                  ["--file", "build.log"], ["--card", "card.json"]):  # fmt: skip
        assert main([*base, *extra]) == 0, capsys.readouterr().err
    shown = emulator.webhook_messages(shown=True)
    assert [r.msgtype for r in shown] == ["text", "markdown", "image", "news", "file",
                                          "template_card"]  # fmt: skip
    assert main([*base, "--markdown", "x" * 5000, "--dry-run"]) == 0  # split, nothing sent
    assert len(emulator.webhook_messages()) == 6
    assert main([*base, "--news", "no-url-here"]) == 2  # a clear error, nothing sent
    assert "TITLE=URL" in capsys.readouterr().err and len(emulator.webhook_messages()) == 6


def test_a_robot_that_cannot_be_reached_is_unreachable_not_perhaps_posted() -> None:
    from tests.conftest import free_port

    nobody = {"alerts": WebhookSettings("alerts", KEY, f"http://127.0.0.1:{free_port()}")}
    client = WebhookClient(nobody, MemoryStore())
    with pytest.raises(Unreachable, match="no connection") as err:
        client.send("alerts", WebhookText("disk almost full"))
    assert "may have been posted" not in str(err.value) and KEY not in str(err.value)
