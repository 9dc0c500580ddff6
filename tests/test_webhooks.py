"""Group robots (消息推送): limits checked before sending, long markdown split without breaking a
code block or a table, the 20-a-minute window kept across processes, the key never shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.config import WebhookSettings
from callback.errors import ApiError, RateLimited, ValidationError
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
    with pytest.raises(ValidationError, match=r"markdown.content: 4097 bytes, at most 4096"):
        WebhookMarkdown("a" * 4097)
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
    second = WebhookClient(HOOKS, two, session=session, sleep=sleep)
    for n in range(20):
        (first if n % 2 else second).send("alerts", WebhookText(f"m{n}"))
    assert waited == []
    with pytest.raises(RateLimited, match="20 messages a minute"):
        second.send("alerts", WebhookText("21st"), wait=False)
    second.send("alerts", WebhookText("21st"))  # waits out the minute, then posts
    assert len(waited) == 1 and 0 < waited[0] <= 60
    assert [b["text"]["content"] for b in session.posted] == [f"m{n}" for n in range(20)] + ["21st"]


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
