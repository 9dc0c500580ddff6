"""Callbacks and the reply rules of the long connection (§3.5-§3.7, §5, §6): req_id kinds,
5-s windows, 846605/846606/846607/846608, stream snapshots and what the member saw."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from ws_helpers import BOT, CARD, USER, Dev, card, markdown, stream

from callback.devtools.aibot import MediaHost, aes_key, decrypt_media
from callback.devtools.emulator import AibotConnectionServer, EmulatorServer
from callback.devtools.emulator.aibot_ws import ws_media

PNG = b"\x89PNG\r\n\x1a\n" + b"\x07" * 40
GROUP = "wrS7aGNQAApqNLsMLS_7RurTthP1vi5A"


def talk(ws: AibotConnectionServer, content: str = "hello", **common: Any) -> tuple[Dev, str]:
    dev = Dev(ws.url)
    assert dev.subscribe()["errcode"] == 0
    req_id = ws.send_message(BOT, ws.callbacks().text(content, **common))
    assert dev.callback()["headers"]["req_id"] == req_id
    return dev, req_id


def event(ws: AibotConnectionServer, dev: Dev, kind: str, **kw: Any) -> str:
    callbacks = ws.callbacks()
    if kind == "enter_chat":
        body = callbacks.enter_chat_event()
    elif kind == "template_card_event":
        body = callbacks.template_card_event(kw.pop("task_id", "task_1"), "opt_2", **kw)
    else:
        body = callbacks.feedback_event("fb-1", **kw)
    req_id = ws.send_event(BOT, body)
    assert dev.callback()["headers"]["req_id"] == req_id
    return req_id


def update(task_id: str = "task_1", **extra: Any) -> dict[str, Any]:
    return {
        "response_type": "update_template_card",
        "userids": [USER],
        "template_card": {**CARD, "task_id": task_id},
        **extra,
    }


def test_message_callbacks_carry_a_working_response_url(ws: AibotConnectionServer) -> None:
    with EmulatorServer(ws.emulator) as http:
        ws.hub.set_knobs(response_url_base=http.url)
        dev = Dev(ws.url)
        dev.subscribe()
        ws.send_message(BOT, ws.callbacks().text("hi", chatid=GROUP, mention="RobotA"))
        body = dev.callback()["body"]
        assert (body["chattype"], body["chatid"]) == ("group", GROUP)
        assert body["response_url"].startswith(f"{http.url}/cgi-bin/aibot/response?response_code=")
        answer = requests.post(body["response_url"], json=markdown("late answer"), timeout=5)
        assert answer.json() == {"errcode": 0, "errmsg": "ok"}
        (record,) = ws.emulator.aibot_responses(shown=True)
        assert (record.msgid, record.chattype, record.chatid) == (body["msgid"], "group", GROUP)
    assert ws.hub.callbacks()[0].chatid == GROUP


def test_media_items_carry_a_per_url_aeskey(ws: AibotConnectionServer) -> None:
    with MediaHost(b"\x00" * 32) as host:
        item = ws_media(host, PNG, filename="cat.png", content_type="image/png")
        dev = Dev(ws.url)
        dev.subscribe()
        ws.send_message(BOT, ws.callbacks().media("image", item))
        image = dev.callback()["body"]["image"]
        assert set(image) == {"url", "aeskey"} and not image["aeskey"].endswith("=")
        encrypted = requests.get(image["url"], timeout=5).content
        assert decrypt_media(encrypted, aes_key(image["aeskey"])) == PNG
        other = ws_media(host, PNG)
        assert other["aeskey"] != item["aeskey"]


def test_a_stream_is_recorded_snapshot_by_snapshot_until_finish(ws: AibotConnectionServer) -> None:
    dev, req_id = talk(ws)
    frames = [
        stream("s1", "正在查询天气…", feedback={"id": "fb-1"}),
        stream("s1", "**广州**今日天气：29度，"),
        stream("s1", "**广州**今日天气：29度，", feedback={"id": "ignored"}),
        stream("s1", "**广州**今日天气：29度，大部分多云", finish=True),
    ]
    assert [dev.reply(req_id, frame) for frame in frames] == [0, 0, 0, 0]
    assert dev.reply(req_id, stream("s2", "a second bubble", finish=True)) == 0
    first, second = ws.hub.conversation(BOT, USER).streams
    assert first.snapshots == tuple(f["stream"]["content"] for f in frames)
    assert first.finished and first.content == "**广州**今日天气：29度，大部分多云"
    assert first.feedback_id == "fb-1" and first.req_id == req_id
    assert (second.stream_id, second.snapshots, second.finished) == (
        "s2",
        ("a second bubble",),
        True,
    )
    assert dev.reply(req_id, stream("s1", "after finish")) == 846608
    assert ws.hub.conversation(BOT, USER).stream("s1").snapshots[-1] == first.content


def test_respond_msg_only_on_a_message_req_id(ws: AibotConnectionServer) -> None:
    dev, message = talk(ws)
    events = [event(ws, dev, kind) for kind in ("enter_chat", "template_card_event", "feedback")]
    assert [dev.reply(r, stream("s", "x")) for r in events] == [846605] * 3
    assert dev.reply("not-a-req-id", stream("s", "x")) == 846605
    refused = dev.call("aibot_respond_msg", stream("s", "x"), req_id=events[0])
    assert refused["errmsg"].startswith("invalid req_id")
    assert dev.reply(message, stream("s", "x", finish=True)) == 0
    ws.hub.add_bot("aibOTHER", "other-secret")
    other = Dev(ws.url)
    other.subscribe("aibOTHER", "other-secret")
    assert other.reply(message, markdown()) == 846605  # another bot's req_id
    conversation = ws.hub.conversation(BOT, USER)
    assert [s.stream_id for s in conversation.streams] == ["s"]
    assert [r.errcode for r in conversation.refused] == [846605] * 4


def test_welcome_only_for_enter_chat_within_5_s(ws: AibotConnectionServer) -> None:
    dev, message = talk(ws)
    welcome = {"msgtype": "text", "text": {"content": "您好！"}}
    enter = event(ws, dev, "enter_chat")
    ws.emulator.advance(4.9)
    assert dev.reply(enter, welcome, "aibot_respond_welcome_msg") == 0
    assert dev.reply(enter, welcome, "aibot_respond_welcome_msg") == 846606
    late = event(ws, dev, "enter_chat")
    ws.emulator.advance(5)
    assert dev.reply(late, welcome, "aibot_respond_welcome_msg") == 846605
    assert dev.reply(message, welcome, "aibot_respond_welcome_msg") == 846605
    fresh = ws.send_message(BOT, ws.callbacks().text("a message, not an enter_chat"))
    assert dev.callback()["headers"]["req_id"] == fresh
    assert dev.reply(fresh, welcome, "aibot_respond_welcome_msg") == 846605
    cards = event(ws, dev, "enter_chat")
    assert dev.reply(cards, card(), "aibot_respond_welcome_msg") == 0
    markdown_welcome = event(ws, dev, "enter_chat")
    assert dev.reply(markdown_welcome, markdown(), "aibot_respond_welcome_msg") == 40008
    welcomes = ws.hub.conversation(BOT, USER).welcomes
    assert [(w.msgtype, w.req_id) for w in welcomes] == [("text", enter), ("template_card", cards)]


def test_card_update_only_for_template_card_event_within_5_s(ws: AibotConnectionServer) -> None:
    dev, message = talk(ws)
    clicked = event(ws, dev, "template_card_event", task_id="task_1")
    assert dev.reply(clicked, update("task_2"), "aibot_respond_update_msg") == 42032
    assert dev.reply(clicked, update(msgtype="x"), "aibot_respond_update_msg") == 40058
    ws.emulator.advance(4.5)
    assert dev.reply(clicked, update(), "aibot_respond_update_msg") == 0
    assert dev.reply(clicked, update(), "aibot_respond_update_msg") == 846606
    assert dev.reply(message, update(), "aibot_respond_update_msg") == 846605
    late = event(ws, dev, "template_card_event", task_id="task_9")
    ws.emulator.advance(5)
    assert dev.reply(late, update("task_9"), "aibot_respond_update_msg") == 846605
    (shown,) = ws.hub.conversation(BOT, USER).card_updates
    assert shown.msgtype == "update_template_card" and shown.body == update()


def test_after_a_template_card_reply_the_req_id_is_spent(ws: AibotConnectionServer) -> None:
    dev, req_id = talk(ws)
    assert dev.reply(req_id, card(task_id="t1")) == 0
    assert dev.reply(req_id, stream("s", "more")) == 846606
    assert dev.reply(req_id, markdown()) == 846606
    refused = dev.call("aibot_respond_msg", markdown(), req_id=req_id)
    assert refused["errmsg"].startswith("request already responded, cannot respond again")
    second = ws.send_message(BOT, ws.callbacks().text("again"))
    assert dev.reply(second, markdown("one")) == 0
    assert dev.reply(second, markdown("two")) == 0  # only a card spends the req_id
    assert dev.reply(second, card(task_id="t1")) == 42033  # task_id unique per bot
    shown = ws.hub.conversation(BOT, USER).shown("reply")
    assert [s.msgtype for s in shown] == ["template_card", "markdown", "markdown"]


def test_doc6_a_stream_takes_updates_for_6_minutes_from_its_first_frame(
    ws: AibotConnectionServer,
) -> None:
    dev, req_id = talk(ws)
    ws.emulator.advance(120)  # the first frame may come late (§3.7)
    assert dev.reply(req_id, stream("s", "1")) == 0
    for _ in range(3):
        ws.emulator.advance(119)
        assert dev.reply(req_id, stream("s", "keepalive")) == 0  # keepalives don't extend it
    ws.emulator.advance(3)
    refused = dev.call("aibot_respond_msg", stream("s", "too late"), req_id=req_id)
    assert refused["errcode"] == 846608
    assert refused["errmsg"].startswith("stream message update expired")
    assert dev.reply(req_id, stream("s2", "a new stream", finish=True)) == 0
    conversation = ws.hub.conversation(BOT, USER)
    assert conversation.stream("s").snapshots == ("1", "keepalive", "keepalive", "keepalive")
    assert not conversation.stream("s").finished


def test_idle6_abs10_keepalives_extend_a_stream_up_to_10_minutes(
    ws: AibotConnectionServer,
) -> None:
    ws.hub.set_knobs(stream_lifetime="idle6_abs10")
    dev, req_id = talk(ws)
    assert dev.reply(req_id, stream("kept", "1")) == 0
    assert dev.reply(req_id, stream("idle", "1")) == 0
    ws.emulator.advance(240)
    assert dev.reply(req_id, stream("kept", "2")) == 0
    ws.emulator.advance(240)
    assert dev.reply(req_id, stream("kept", "3")) == 0  # 8 min: alive thanks to keepalives
    assert dev.reply(req_id, stream("idle", "2")) == 846608  # 8 min without an update
    ws.emulator.advance(119)
    assert dev.reply(req_id, stream("kept", "4")) == 0
    ws.emulator.advance(1)
    assert dev.reply(req_id, stream("kept", "5")) == 846608  # 10 min absolute


def test_lifetimes_are_knobs_in_seconds(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(stream_lifetime_s=2)
    dev, req_id = talk(ws)
    assert dev.reply(req_id, stream("s", "1")) == 0
    ws.emulator.advance(2)
    assert dev.reply(req_id, stream("s", "2")) == 846608


def test_30_messages_a_minute_per_conversation(ws: AibotConnectionServer) -> None:
    dev, req_id = talk(ws)
    push = {"chatid": USER, "chat_type": 1, **markdown()}
    assert [dev.code("aibot_send_msg", push) for _ in range(28)] == [0] * 28
    frames = [stream("s", "x" * n) for n in range(1, 40)] + [stream("s", "done", finish=True)]
    assert {dev.reply(req_id, frame) for frame in frames} == {0}  # a stream counts once
    assert dev.reply(req_id, markdown("30th")) == 0
    refused = dev.call("aibot_respond_msg", markdown("31st"), req_id=req_id)
    assert refused["errcode"] == 846607
    assert dev.code("aibot_send_msg", push) == 846607
    assert dev.code("aibot_send_msg", {**push, "chatid": "lisi"}) == 0  # another conversation
    ws.emulator.advance(60)
    assert dev.code("aibot_send_msg", push) == 0
    conversation = ws.hub.conversation(BOT, USER)
    assert len(conversation.pushes) == 29 and len(conversation.shown("reply")) == 1
    assert [r.errcode for r in conversation.refused] == [846607, 846607]


def test_hourly_window_and_counting_every_frame_are_knobs(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(per_hour=3, count_stream_frames=True)
    dev, req_id = talk(ws)
    assert [dev.reply(req_id, stream("s", str(n))) for n in range(4)] == [0, 0, 0, 846607]
    ws.emulator.advance(3599)
    assert dev.reply(req_id, markdown()) == 846607
    ws.emulator.advance(1)
    assert dev.reply(req_id, markdown()) == 0


def test_overlong_stream_content_is_cut_or_refused(ws: AibotConnectionServer) -> None:
    dev, req_id = talk(ws)
    long = "中" * 6827  # 20481 bytes
    assert dev.reply(req_id, stream("s", long)) == 0
    (shown,) = ws.hub.conversation(BOT, USER).streams
    assert shown.truncated and shown.content == "中" * 6826
    ws.hub.set_knobs(content_overflow="reject")
    assert dev.reply(req_id, stream("s", long)) == 45002
    assert dev.reply(req_id, markdown("a" * 20481)) == 45002


def test_bad_bodies_are_refused_and_not_shown(ws: AibotConnectionServer) -> None:
    dev, req_id = talk(ws)
    assert [
        dev.reply(req_id, {"msgtype": "stream", "stream": {"content": "no id"}}),
        dev.reply(req_id, stream("s", "x", feedback={"id": "f" * 257})),
        dev.reply(req_id, stream("s", "x", msg_item=[])),  # msg_item only with finish
        dev.reply(req_id, {"msgtype": "text", "text": {"content": "text is no reply"}}),
        dev.reply(req_id, markdown("")),
        dev.reply(req_id, {"msgtype": "template_card", "template_card": {"card_type": "x"}}),
        dev.reply(req_id, {"msgtype": "file", "file": {"media_id": "never-uploaded"}}),
        dev.reply(req_id, {**stream("s", "x"), "msgtype": "stream_with_template_card"}),
        dev.code("aibot_respond_msg", None, req_id=req_id),
    ] == [40058, 40058, 40058, 40008, 44004, 42031, 40007, 40008, 40058]
    conversation = ws.hub.conversation(BOT, USER)
    assert conversation.items == () and len(conversation.refused) == 9


def test_stream_with_card_and_msg_item_behind_knobs(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(accept_stream_with_card=True)
    dev, req_id = talk(ws)
    with_card = {**stream("s", "x"), "msgtype": "stream_with_template_card"}
    with_card["template_card"] = CARD
    assert dev.reply(req_id, with_card) == 0
    assert dev.reply(req_id, with_card) == 846606  # the card goes once per message
    image = {"msgtype": "image", "image": {"base64": "iVBORw0KGgo=", "md5": "0" * 32}}
    assert dev.reply(req_id, stream("s", "done", True, msg_item=[image])) == 0
    shown = ws.hub.conversation(BOT, USER).stream("s")
    assert shown.card == CARD and shown.ignored_msg_item and shown.images == ()


@pytest.mark.parametrize("chat_type", [None, 0, 2])
def test_pushes_to_a_group_by_chat_type(ws: AibotConnectionServer, chat_type: int | None) -> None:
    dev, _ = talk(ws, chatid=GROUP)
    body: dict[str, Any] = {"chatid": GROUP, **markdown("to the group")}
    if chat_type is not None:
        body["chat_type"] = chat_type
    assert dev.code("aibot_send_msg", body) == 0
    (push,) = ws.hub.conversation(BOT, GROUP, "group").pushes
    assert push.req_id is None and push.body == body
