"""The outbox on its own: a real MemoryStore on a test clock and a real client sending to the
WeCom emulator over HTTP. What counts is what WeCom was sent, what the store keeps about each
item (state, attempts, error: what `wecom outbox list` shows) and what ctx.send returns."""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from callback.delivery.outbox import CHECK_MARGIN_S, SEND, UPDATE_CARD, Outbox, OutboxPolicy
from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorServer
from callback.devtools.emulator.faults import CallMatch
from callback.devtools.simulator import Simulator, plaintext
from callback.errors import ApiError, WecomError
from callback.inbound.messages import Message, parse
from callback.inbound.replies import (
    Article,
    ImageReply,
    NewsReply,
    Reply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from callback.outbound import TemplateCard, Text, UpdateTemplateCard
from callback.outbound.client import RetryPolicy, SendResult, WecomClient
from callback.store import MemoryStore
from callback.store.records import DEAD, DONE, PENDING
from tests.conftest import AES_KEY, TOKEN, emulator_settings, free_port

USER = "zhangsan"
LONG = "长" * 1000  # 3000 bytes: two messages


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(url: str, clock: Clock) -> Outbox:
    """An outbox whose client tries each request once and gives up on an answer after 0.3 s."""
    store = MemoryStore(clock)
    client = WecomClient(
        emulator_settings(url).apps, store, retry=RetryPolicy(attempts=1), timeout=(1.0, 0.3)
    )
    return Outbox(store, client, owner=lambda: "test", clock=clock)


@pytest.fixture
def outbox(emulator_server: EmulatorServer, emulator: Emulator, clock: Clock) -> Outbox:
    return make(emulator_server.url, clock)


def texts(emulator: Emulator) -> list[str]:
    return [m.body["text"]["content"] for m in emulator.messages()]


# -- ctx.send: what the handler gets back --------------------------------------------------------


def test_send_returns_wecoms_msgid_for_every_part_of_a_long_text(
    outbox: Outbox, emulator: Emulator
) -> None:
    result = outbox.send("cb:send:0", "hr", Text(LONG), [USER])
    sent = emulator.messages()
    assert len(sent) == 2 and "".join(texts(emulator)) == LONG
    assert result == SendResult(msgid=sent[0].msgid, msgids=(sent[0].msgid, sent[1].msgid))


def test_send_options_reach_wecom(outbox: Outbox, emulator: Emulator) -> None:
    outbox.send("cb:send:0", "hr", Text("secret"), [USER], safe=1, duplicate_check_interval=600)
    (sent,) = emulator.messages()
    assert sent.body["safe"] == 1 and sent.body["duplicate_check_interval"] == 600


def test_a_rerun_send_returns_the_first_result_and_sends_nothing(
    outbox: Outbox, emulator: Emulator
) -> None:
    first = outbox.send("cb:send:0", "hr", Text("once"), [USER])
    again = outbox.send("cb:send:0", "hr", Text("once"), [USER])  # the handler re-ran
    assert again == first and first.msgid and texts(emulator) == ["once"]


def test_a_send_that_must_be_retried_returns_queued(outbox: Outbox, emulator: Emulator) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    emulator.fail_next(1, errcode=45009, path="message/send")  # WeCom busy
    result = outbox.send("cb:send:0", "hr", Text("later"), [USER])
    assert result == SendResult(msgid="", queued=True)
    assert result.queued is True and result.msgid == ""
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == PENDING and item.attempts == 1


def test_a_send_wecom_refuses_raises_wecoms_error(outbox: Outbox, emulator: Emulator) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    emulator.fail_next(1, errcode=40003, path="message/send")  # invalid user: never retried
    with pytest.raises(ApiError) as refused:
        outbox.send("cb:send:0", "hr", Text("to nobody"), [USER])
    assert refused.value.errcode == 40003
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == DEAD and item.attempts == 1
    assert "errcode 40003" in item.error
    with pytest.raises(WecomError) as rerun:  # the handler re-ran: the same failure, stored
        outbox.send("cb:send:0", "hr", Text("to nobody"), [USER])
    assert str(rerun.value) == f"send cb:send:0 failed: {item.error}"


def test_a_long_text_whose_second_part_is_refused_raises(
    outbox: Outbox, emulator: Emulator
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    second = outbox.client.bodies("hr", Text(LONG), [USER])[1]
    emulator.fail_next(1, errcode=40003, match=CallMatch(fields={"text": second["text"]}))
    with pytest.raises(ApiError):
        outbox.send("cb:send:0", "hr", Text(LONG), [USER])
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == DEAD and item.parts_done == 1
    assert len(texts(emulator)) == 2  # the warm-up and the first part


# -- the backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("draw", "share"), [("low", 0.5), ("high", 1.0)])
def test_the_backoff_doubles_per_attempt_jittered_down_to_half_and_capped(
    monkeypatch: pytest.MonkeyPatch, draw: str, share: float
) -> None:
    monkeypatch.setattr(random, "uniform", lambda a, b: a if draw == "low" else b)
    policy = OutboxPolicy(base_s=1.0, cap_s=300.0)
    assert [policy.delay(n) for n in (0, 1, 3)] == [share * 1, share * 2, share * 8]
    assert policy.delay(9) == share * 300  # 512 s, capped
    assert policy.delay(10_000) == share * 300  # no overflow however many attempts


# -- which failures are tried again --------------------------------------------------------------


def attempt_at(outbox: Outbox, clock: Clock, item_id: str, age_s: float) -> Any:
    """Attempt `item_id` (added now) `age_s` seconds after it was created; the stored item."""
    clock.now += age_s
    outbox.deliver(item_id)
    return outbox.store.outbox_get(item_id)


def add_text(outbox: Outbox, item_id: str, text: str, **options: Any) -> None:
    outbox.add(item_id, "hr", SEND, outbox.client.bodies("hr", Text(text), [USER], **options))


@pytest.mark.parametrize(("age", "state"), [(24 * 3600.0, PENDING), (24 * 3600.0 + 1, DEAD)])
def test_a_busy_wecom_is_retried_until_the_item_is_a_day_old(
    outbox: Outbox, emulator: Emulator, clock: Clock, age: float, state: str
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    add_text(outbox, "item", "busy")
    emulator.fail_next(1, errcode=-1, path="message/send")
    item = attempt_at(outbox, clock, "item", age)
    assert item.state == state and item.attempts == 1 and "errcode -1" in item.error


def test_no_connection_to_wecom_is_retried(emulator_server: EmulatorServer, clock: Clock) -> None:
    outbox = make(f"http://127.0.0.1:{free_port()}", clock)  # nothing listens there
    outbox.add("item", "hr", SEND, ({"touser": USER, "msgtype": "text"},))
    item = attempt_at(outbox, clock, "item", 0)
    assert item.state == PENDING and item.attempts == 1 and "no connection" in item.error
    assert item.next_at > clock.now


@pytest.mark.parametrize(
    ("age", "state"), [(600 - CHECK_MARGIN_S - 1, PENDING), (600 - CHECK_MARGIN_S, DEAD)]
)
def test_no_answer_is_retried_only_well_inside_the_bodys_duplicate_check_interval(
    outbox: Outbox, emulator: Emulator, clock: Clock, age: float, state: str
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    add_text(outbox, "item", "maybe delivered", duplicate_check_interval=600)
    emulator.no_answer_next(1, deliver=True, path="message/send")
    item = attempt_at(outbox, clock, "item", age)
    assert item.state == state and item.attempts == 1
    assert ("wecom outbox retry item" in item.error) == (state == DEAD)


# -- late replies, in their send-API form ---------------------------------------------------------


@pytest.fixture
def sim() -> Simulator:
    return Simulator.create(TOKEN, AES_KEY, DEFAULT_CORP_ID, agent_id=1000002)


def inbound(sim: Simulator, fields: dict[str, Any]) -> Message:
    return parse(plaintext(fields))


def test_late_media_and_news_replies_are_pushed_in_their_send_form(
    outbox: Outbox, emulator: Emulator, sim: Simulator
) -> None:
    image = outbox.client.upload_media("hr", "image", "a.png", b"\x89PNG")
    voice = outbox.client.upload_media("hr", "voice", "a.amr", b"#!AMR")
    video = outbox.client.upload_media("hr", "video", "a.mp4", b"\0\0\0 ftyp")
    message = inbound(sim, sim.text("show me"))
    replies: list[Reply] = [
        ImageReply(image),
        VoiceReply(voice),
        VideoReply(video, "Clip", "A clip"),
        NewsReply((Article("Title", "About", "https://p/1.png", "https://a/1"),)),
    ]
    for n, reply in enumerate(replies):
        outbox.push_reply(f"cb{n}:reply", "hr", message, reply)
    sent = emulator.messages()
    assert [m.touser for m in sent] == [(sim.user,)] * 4
    assert sent[0].body["image"] == {"media_id": image}
    assert sent[1].body["voice"] == {"media_id": voice}
    assert sent[2].body["video"] == {"media_id": video, "title": "Clip", "description": "A clip"}
    assert sent[3].body["news"] == {
        "articles": [
            {
                "title": "Title",
                "description": "About",
                "url": "https://a/1",
                "picurl": "https://p/1.png",
            }
        ]
    }
    assert all(outbox.store.outbox_get(f"cb{n}:reply").state == DONE for n in range(4))


@pytest.mark.parametrize("kind", ["button", "card"])
def test_a_late_card_update_is_pushed_with_the_callbacks_response_code(
    outbox: Outbox, emulator: Emulator, sim: Simulator, kind: str
) -> None:
    card = TemplateCard.button_interaction("t-1", "Confirm?", [("OK", "OK")])
    code = emulator.issue_response_code(outbox.client.send("hr", card, [sim.user]).msgid)
    message = inbound(sim, sim.card_action("OK", task_id="t-1") | {"ResponseCode": code})
    new_card = TemplateCard.button_interaction("t-1", "Confirmed", [("OK", "OK")]).payload()
    reply: Reply = (
        UpdateButtonReply("Confirmed") if kind == "button" else UpdateTemplateCardReply(new_card)
    )
    outbox.push_reply("cb:reply", "hr", message, reply)
    (update,) = emulator.updates()
    assert update.response_code == code and update.body["userids"] == [sim.user]
    if kind == "button":
        assert update.body["button"] == {"replace_name": "Confirmed"}
    else:
        assert update.body["template_card"]["main_title"]["title"] == "Confirmed"


def test_a_reply_with_no_send_form_is_kept_dead_with_what_it_was(
    outbox: Outbox,
    emulator: Emulator,
    sim: Simulator,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = inbound(sim, sim.text("no card here"))
    reply = UpdateButtonReply("Confirmed")
    with caplog.at_level(logging.ERROR, logger="wecom.outbox"):
        outbox.push_reply("cb:reply", "hr", message, reply)
    assert [r.getMessage() for r in caplog.records if r.name == "wecom.outbox"] == [
        f"outbox cb:reply: the reply to {sim.user} has no send-API form (a card update needs "
        "the callback's ResponseCode); kept as a dead letter"
    ]
    item = outbox.store.outbox_get("cb:reply")
    assert item is not None and item.state == DEAD and item.api == "unsendable"
    assert item.attempts == 0 and item.next_at == clock.now
    assert item.bodies == ({"reply": "UpdateButtonReply", "to": sim.user, "value": repr(reply)},)
    assert item.error == "cannot be pushed: a card update needs the callback's ResponseCode"
    assert emulator.messages() == [] and emulator.updates() == []
    assert outbox.deliver("cb:reply") is None  # dead: nothing to attempt


@dataclass(frozen=True, slots=True)
class LocationReply(Reply):
    """A passive reply type of a handler's own, which the send API has no form for."""

    label: str
    msg_type = "location"

    def body(self) -> dict[str, Any]:
        return {"Label": self.label}


def test_a_late_reply_of_a_handlers_own_type_is_kept_dead_naming_the_type(
    outbox: Outbox, emulator: Emulator, sim: Simulator
) -> None:
    outbox.push_reply("cb:reply", "hr", inbound(sim, sim.text("where")), LocationReply("here"))
    item = outbox.store.outbox_get("cb:reply")
    assert item is not None and item.state == DEAD
    assert item.error == "cannot be pushed: no send-API form for LocationReply"
    assert item.bodies[0]["reply"] == "LocationReply" and emulator.messages() == []


def test_a_card_update_whose_code_an_unanswered_attempt_used_is_done(
    outbox: Outbox, emulator: Emulator, sim: Simulator, clock: Clock
) -> None:
    card = TemplateCard.button_interaction("t-1", "Confirm?", [("OK", "OK")])
    code = emulator.issue_response_code(outbox.client.send("hr", card, [sim.user]).msgid)
    message = inbound(sim, sim.card_action("OK", task_id="t-1") | {"ResponseCode": code})
    emulator.no_answer_next(1, deliver=True, path="message/update_template_card")
    outbox.push_reply("cb:reply", "hr", message, UpdateButtonReply("Confirmed"))
    item = outbox.store.outbox_get("cb:reply")
    assert item is not None and item.state == PENDING and item.attempts == 1  # sent, no answer
    clock.now += 61  # its retry is due
    done = outbox.deliver("cb:reply")  # WeCom: the code is used (60140)
    assert done is not None
    assert done.state == DONE and done.error == ""
    assert done.results == ({"errcode": 0, "note": "response_code used by an earlier attempt"},)
    assert len(emulator.updates()) == 1


def test_a_card_update_whose_code_is_used_on_its_first_attempt_is_dead(
    outbox: Outbox, emulator: Emulator, sim: Simulator
) -> None:
    card = TemplateCard.button_interaction("t-1", "Confirm?", [("OK", "OK")])
    code = emulator.issue_response_code(outbox.client.send("hr", card, [sim.user]).msgid)
    message = inbound(sim, sim.card_action("OK", task_id="t-1") | {"ResponseCode": code})
    outbox.push_reply("first:reply", "hr", message, UpdateButtonReply("Confirmed"))
    outbox.push_reply("second:reply", "hr", message, UpdateButtonReply("Again"))
    item = outbox.store.outbox_get("second:reply")
    assert item is not None and item.state == DEAD and "errcode 60140" in item.error


# -- a member's full rate window ------------------------------------------------------------------


def test_a_full_rate_window_waits_without_counting_a_failure(
    emulator_server: EmulatorServer, emulator: Emulator, clock: Clock
) -> None:
    outbox = make(emulator_server.url, clock)
    outbox.client.member_limits = ((60.0, 1),)  # one message a minute per member
    outbox.send("a", "hr", Text("first"), [USER])
    assert outbox.send("b", "hr", Text("second"), [USER]).queued
    item = outbox.store.outbox_get("b")
    assert item is not None and item.state == PENDING and item.attempts == 0
    assert item.next_at == pytest.approx(clock.now + 60, abs=1) and "rate window" in item.error
    assert texts(emulator) == ["first"]
    clock.now += 61
    assert outbox.deliver("b") is not None and texts(emulator) == ["first", "second"]


# -- what the operator reads in the log ------------------------------------------------------------


def test_retries_and_dead_letters_are_logged_with_the_item_and_the_reason(
    outbox: Outbox, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    emulator.fail_next(1, errcode=45009, path="message/send")
    with caplog.at_level(logging.WARNING, logger="wecom.outbox"):
        outbox.send("busy", "hr", Text("later"), [USER])
        emulator.fail_next(1, errcode=40003, path="message/send")
        with pytest.raises(ApiError):
            outbox.send("refused", "hr", Text("to nobody"), [USER])
    retry, dead = (r.getMessage() for r in caplog.records if r.name == "wecom.outbox")
    assert re.fullmatch(
        r"outbox busy: attempt 1 failed \(app .hr.: message/send failed: errcode 45009 .*\); "
        r"next in [12] s",
        retry,
    )
    assert re.fullmatch(
        r"outbox refused: giving up after 1 attempt\(s\), kept as dead: "
        r"app .hr.: message/send failed: errcode 40003 .*",
        dead,
    )


# -- parts, fences and an operator's retry -------------------------------------------------------


def test_a_long_text_retried_after_its_second_part_failed_sends_only_the_rest(
    outbox: Outbox, emulator: Emulator, clock: Clock
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    second = outbox.client.bodies("hr", Text(LONG), [USER])[1]
    emulator.fail_next(1, errcode=45009, match=CallMatch(fields={"text": second["text"]}))
    assert outbox.send("cb:send:0", "hr", Text(LONG), [USER]).queued
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == PENDING and item.parts_done == 1
    assert len(item.results) == 1 and "errcode 45009" in item.error
    clock.now = item.next_at
    done = outbox.deliver("cb:send:0")
    assert done is not None and done.state == DONE and done.parts_done == 2
    assert done.error == "" and len(done.results) == 2
    assert texts(emulator)[1:] == [p["text"]["content"] for p in outbox.client.bodies(
        "hr", Text(LONG), [USER])]  # fmt: skip
    again = outbox.send("cb:send:0", "hr", Text(LONG), [USER])  # the handler re-ran
    assert again.msgids == tuple(m.msgid for m in emulator.messages()[1:])


def test_a_rate_window_full_mid_message_keeps_the_parts_sent(
    outbox: Outbox, emulator: Emulator, clock: Clock
) -> None:
    outbox.client.member_limits = ((60.0, 1),)  # one message a minute per member
    assert outbox.send("cb:send:0", "hr", Text(LONG), [USER]).queued
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.parts_done == 1 and len(item.results) == 1
    assert item.attempts == 0 and item.next_at == pytest.approx(clock.now + 60, abs=1)
    assert "rate window" in item.error and len(texts(emulator)) == 1
    clock.now += 61
    done = outbox.deliver("cb:send:0")
    assert done is not None and done.state == DONE and "".join(texts(emulator)) == LONG


def test_a_stalled_card_update_is_fenced_out_by_the_new_holder(
    outbox: Outbox,
    emulator: Emulator,
    sim: Simulator,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    card = TemplateCard.button_interaction("t-1", "Confirm?", [("OK", "OK")])
    code = emulator.issue_response_code(outbox.client.send("hr", card, [sim.user]).msgid)
    update = UpdateTemplateCard(code, replace_name="Confirmed", users=[sim.user])
    outbox.add("upd", "hr", UPDATE_CARD, [update.body(1000002)])
    stalled = outbox.store.outbox_claim("upd", "stalled/1", 60)
    clock.now += 61  # the first sender stalled past its lease: the item is taken over
    taken = outbox.store.outbox_claim("upd", "live/1", 60)
    assert stalled is not None and taken is not None
    with caplog.at_level(logging.WARNING, logger="wecom.outbox"):
        assert outbox.attempt(stalled).state == PENDING and emulator.updates() == []
    assert [r.getMessage() for r in caplog.records if r.name == "wecom.outbox"] == [
        "outbox upd: lease lost before part 0; its new holder sends it"
    ]
    assert outbox.attempt(taken).state == DONE and len(emulator.updates()) == 1


def test_an_operator_retry_of_an_unsendable_reply_keeps_it_dead_saying_why(
    outbox: Outbox, emulator: Emulator, sim: Simulator
) -> None:
    outbox.push_reply("cb:reply", "hr", inbound(sim, sim.text("hi")), UpdateButtonReply("X"))
    assert outbox.store.outbox_retry("cb:reply")  # `wecom outbox retry cb:reply`
    item = outbox.deliver("cb:reply")
    assert item is not None and item.state == DEAD and item.attempts == 1
    assert item.error == (
        "unsendable: nothing to send (cannot be pushed: a card update needs the callback's "
        "ResponseCode)"
    )
    assert emulator.messages() == [] and emulator.updates() == []


def test_deliver_leaves_an_item_another_sender_holds(outbox: Outbox, emulator: Emulator) -> None:
    add_text(outbox, "item", "once")
    assert outbox.store.outbox_claim("item", "other/1", 60) is not None
    assert outbox.deliver("item") is None and emulator.messages() == []
