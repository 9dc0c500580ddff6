"""AibotSide's URL verification and events against stand-in bots: enter_chat, cards, feedback."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from aibot_helpers import BOT_ID, EAK, TOKEN, Raw, StandInBot, stream

from callback.devtools.aibot import AibotSide, ProtocolViolation

CARD = {"card_type": "button_interaction", "task_id": "task-1", "main_title": {"title": "ok"}}


def make_side(url: str, **kw: Any) -> AibotSide:
    return AibotSide(url, TOKEN, EAK, BOT_ID, **kw)


# -- URL verification (§2.2) -------------------------------------------------------------------


def test_verification_gets_the_exact_echo() -> None:
    with StandInBot(lambda plain: None) as server, make_side(server.url) as side:
        check = side.verify()
    assert check.ok and check.status == 200 and check.body == check.echo.encode()
    assert set(check.query) == {"msg_signature", "timestamp", "nonce", "echostr"}


@pytest.mark.parametrize(
    "answer",
    [
        lambda e: f'"{e}"'.encode(),
        lambda e: e.encode() + b"\n",
        lambda e: b"\xef\xbb\xbf" + e.encode(),
    ],
)
def test_verification_refuses_quotes_newline_and_bom(answer: Any) -> None:
    with StandInBot(lambda plain: None, echo=answer) as server, make_side(server.url) as side:
        with pytest.raises(ProtocolViolation, match=r"verify\.echo \(§2\.2"):
            side.verify()
        check = make_side(server.url, strict=False).verify()
    assert [v.rule for v in check.violations] == ["verify.echo"]


def test_verification_must_answer_within_one_second() -> None:
    def slow(echo: str) -> bytes:
        time.sleep(0.3)
        return echo.encode()

    with StandInBot(lambda plain: None, echo=slow) as server:
        assert make_side(server.url).verify_timeout_s == 1.0
        check = make_side(server.url, strict=False, verify_timeout_s=0.1).verify()
    assert [v.rule for v in check.violations] == ["verify.timeout"]


# -- template_card_event (§2.6, §2.8.5, §2.10) -------------------------------------------------


def update(task_id: str = "task-1", **extra: Any) -> dict[str, Any]:
    return {
        "response_type": "update_template_card",
        "template_card": {**CARD, "task_id": task_id},
        **extra,
    }


def test_card_event_accepts_the_matching_update_or_nothing() -> None:
    with (
        StandInBot(lambda plain: update(userids=["zhangsan"])) as server,
        make_side(server.url) as side,
    ):
        event = side.template_card_event("task-1", "confirm", selected={"q": ["one"]})
        answer = side.card_event(event)
    assert (
        answer.ok
        and answer.reply is not None
        and answer.reply["template_card"]["task_id"] == "task-1"
    )
    with StandInBot(lambda plain: None) as server, make_side(server.url) as side:
        assert side.card_event(side.template_card_event("task-1", "confirm")).reply is None


def test_card_event_with_the_wrong_task_id() -> None:
    with (
        StandInBot(lambda plain: update("task-2")) as server,
        make_side(server.url) as side,
        pytest.raises(ProtocolViolation, match=r"card\.task_id \(§2\.8\.5") as raised,
    ):
        side.card_event(side.template_card_event("task-1", "confirm"))
    assert raised.value.exchange is not None and raised.value.exchange.kind == "template_card_event"


@pytest.mark.parametrize(
    ("reply", "rule"),
    [
        (stream("s", "a", True), "reply.type"),
        ({"msgtype": "update_template_card", **update()}, "update.msgtype"),
        (update(userids="zhangsan"), "update.userids"),
    ],
)
def test_card_event_reply_rules(reply: dict[str, Any], rule: str) -> None:
    with StandInBot(lambda plain: reply) as server, make_side(server.url, strict=False) as side:
        answer = side.card_event(side.template_card_event("task-1", "confirm"))
    assert [v.rule for v in answer.violations] == [rule]


def test_card_event_is_sent_once_with_a_5_s_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """One attempt, WeCom's 5 s (§2.10): captured, then a slow bot gets no second try."""
    timeouts: list[float] = []
    original = requests.Session.post

    def spy(self: requests.Session, url: str, **kw: Any) -> requests.Response:
        timeouts.append(kw["timeout"])
        return original(self, url, **kw)

    monkeypatch.setattr(requests.Session, "post", spy)
    with StandInBot(lambda plain: None) as server, make_side(server.url) as side:
        side.card_event(side.template_card_event("task-1", "confirm"))
    assert timeouts == [5.0]
    with StandInBot(lambda plain: None, delay=lambda plain: 0.4) as server:
        side = make_side(server.url, strict=False, timeout_s=0.15)
        answer = side.card_event(side.template_card_event("task-1", "confirm"))
        time.sleep(0.4)
        received = len(server.received)
    assert answer.timed_out and [v.rule for v in answer.violations] == ["http.timeout"]
    assert received == 1


def test_card_event_carries_a_response_url_but_feedback_and_enter_chat_do_not() -> None:
    side = make_side(
        "http://127.0.0.1:9/x", register=lambda grant: None, response_url_base="http://e"
    )
    assert side.template_card_event("t", "k")["response_url"].startswith(
        "http://e/cgi-bin/aibot/response?response_code="
    )
    assert "response_url" not in side.feedback_event("fb")
    assert "response_url" not in side.enter_chat_event()


# -- feedback_event and enter_chat -----------------------------------------------------------


def test_feedback_accepts_only_no_reply() -> None:
    for empty in (None, Raw(b"success"), {}):
        with StandInBot(lambda plain, e=empty: e) as server, make_side(server.url) as side:
            assert side.feedback(side.feedback_event("fb-5c1b2d7e", rating=2)).ok
    with (
        StandInBot(lambda plain: stream("s", "thanks", True)) as server,
        make_side(server.url) as side,
        pytest.raises(ProtocolViolation, match=r"reply\.type"),
    ):
        side.feedback(side.feedback_event("fb-5c1b2d7e"))


def test_enter_chat_accepts_text_card_or_nothing() -> None:
    for reply in (
        {"msgtype": "text", "text": {"content": "hello\nI'm RobotA\n"}},
        {"msgtype": "template_card", "template_card": {"card_type": "text_notice"}},
        None,
    ):
        with StandInBot(lambda plain, r=reply: r) as server, make_side(server.url) as side:
            assert side.enter_chat().ok
            assert server.received[0]["event"] == {"eventtype": "enter_chat"}
    for reply, rule in (
        ({"msgtype": "markdown", "markdown": {"content": "hi"}}, "reply.type"),
        ({"msgtype": "text", "text": "hi"}, "text.content"),
        ({"msgtype": "template_card", "template_card": {"card_type": "poster"}}, "card.type"),
    ):
        with (
            StandInBot(lambda plain, r=reply: r) as server,
            make_side(server.url, strict=False) as side,
        ):
            assert [v.rule for v in side.enter_chat().violations] == [rule]


def test_events_must_be_sent_with_their_own_method() -> None:
    side = make_side("http://127.0.0.1:9/x")
    with pytest.raises(ValueError, match="not a feedback_event"):
        side.feedback(side.enter_chat_event())
