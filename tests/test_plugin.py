"""The pytest plugin (`wecom` fixture) as handler authors use it, and the README's example run as
a user's own test file in a separate pytest process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from callback.testing import WecomTester

ROOT = Path(__file__).resolve().parent.parent


def test_fixture_drives_the_shipped_handlers(wecom: WecomTester) -> None:
    result = wecom.text("help")
    assert result.status == 200 and result.reply.content.startswith("Commands:")
    assert result.sent == []
    clicked = wecom.click("MENU_BOOK_ROOM", user="lisi")
    assert "Room 402" in clicked.reply.content
    (notice,) = clicked.sent
    assert notice.msgtype == "miniprogram_notice" and notice.touser == ("lisi",)
    card = wecom.card_action("APPROVE", task_id="t-7", selected={"q": ["a"]})
    assert card.reply.raw["Button"] == {"ReplaceName": "Approved"}
    assert wecom.event("enter_agent", user="wangwu").reply.content.startswith("Welcome, wangwu")


def test_sent_waits_for_background_work(
    wecom: WecomTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_DELAY_S", "0.3")
    result = wecom.text("ask how are you?")
    assert result.reply is None  # a background route: an empty 200 at once
    (answer,) = result.sent
    assert "how are you?" in answer.body["text"]["content"]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"## Testing your handlers.*?```python\n(.*?)```", text, re.DOTALL)
    assert found, "README.md has no 'Testing your handlers' example"
    return found.group(1)


def test_readme_example_runs_as_a_users_test_file(tmp_path: Path) -> None:
    (tmp_path / "test_my_handlers.py").write_text(readme_example(), encoding="utf-8")
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "__init__.py").write_text("")
    (handlers / "hello.py").write_text(
        "from callback import Router\n\nrouter = Router()\n\n\n"
        '@router.text("hello")\ndef hello(message, ctx):\n    return "Hello!"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
