"""The shipped demo handlers (callback/demo/), tested the way handler authors test theirs: with
the `wecom` fixture of the package's pytest plugin (sandboxed app, WeCom emulator)."""

from __future__ import annotations

import pytest

from callback.devtools.testing import Result, WecomTester


def text_of(result: Result) -> str:
    assert result.status == 200 and result.reply is not None and result.reply.msg_type == "text"
    return str(result.reply.content)


def test_menu_clicks(wecom: WecomTester) -> None:
    assert "help" in text_of(wecom.click("MENU_HELP"))
    assert "wecom-callback" in text_of(wecom.click("MENU_ABOUT"))
    unknown = wecom.click("UNKNOWN_KEY")
    assert unknown.status == 200 and unknown.reply is None  # the fallback ignores events
    assert "Welcome, lisi" in text_of(wecom.event("enter_agent", user="lisi"))


def test_chat_commands(wecom: WecomTester) -> None:
    assert text_of(wecom.text("help")).startswith("Commands:")
    assert text_of(wecom.text("echo 多行\ntext")) == "多行\ntext"
    assert text_of(wecom.text("order 12345")).startswith("Order 12345")
    assert "don't know" in text_of(wecom.text("order abc"))


def test_card_buttons(wecom: WecomTester) -> None:
    for key, label in (("APPROVE", "Approved"), ("REJECT", "Rejected")):
        result = wecom.card_action(key, task_id="t-1")
        assert result.reply is not None and result.reply.raw["Button"] == {"ReplaceName": label}
        assert result.sent == []


def test_book_room_click_sends_a_miniprogram_notice(wecom: WecomTester) -> None:
    result = wecom.click("MENU_BOOK_ROOM", user="wangwu")
    assert "Room 402 is booked" in text_of(result)
    (notice,) = result.sent
    assert notice.msgtype == "miniprogram_notice" and notice.touser == ("wangwu",)
    assert "agentid" not in notice.body
    assert notice.body["miniprogram_notice"]["content_item"][1] == {
        "key": "预订人",
        "value": "wangwu",
    }


def test_assistant_answers_in_the_background(
    wecom: WecomTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_DELAY_S", "0.5")
    result = wecom.text("ask what is WeCom?", user="zhaoliu")
    assert result.status == 200 and result.reply is None  # answered before the model finished
    (answer,) = result.sent  # waits for the background handler
    assert answer.touser == ("zhaoliu",)
    assert "You asked: 'what is WeCom?'" in answer.body["text"]["content"]


def test_the_assistant_streams_its_answer_in_the_ai_bot(
    wecom: WecomTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_DELAY_S", "0.6")
    seen = wecom.bot("what is WeCom?")
    assert (
        seen.final_content
        == "You asked: 'what is WeCom?'. Here is a considered answer: it depends."
    )
    grown = [s for s in seen.snapshots if s]
    assert len(set(grown)) >= 3 and all(seen.final_content.startswith(s) for s in grown)
    in_group = wecom.bot("hi", group=True)  # in a group the @-mention is stripped first
    assert in_group.final_content.startswith("You asked: 'hi'")
