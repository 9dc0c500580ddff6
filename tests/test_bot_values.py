"""AI-bot values: the documented callbacks (wecom-aibot-protocol.md §2.5-2.7) parsed into typed
values the Router matches, and the replies' limits checked before anything is sent."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from callback import Router, UpdateTemplateCardReply
from callback.bots.messages import (
    BotCardEvent,
    BotEvent,
    BotFeedback,
    BotMedia,
    BotMixed,
    BotText,
    BotVoice,
    StreamRefresh,
    parse,
    strip_mentions,
)
from callback.bots.replies import (
    CONTENT_LIMIT_BYTES,
    StreamReply,
    TemplateCardReply,
    markdown_body,
    split,
    stream_body,
    update_body,
)
from callback.errors import BadRequest, ValidationError

COMMON = {"aibotid": "AIBOTID", "from": {"userid": "USERID"}, "response_url": "RESPONSEURL"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def doc(**fields: Any) -> bytes:
    return json.dumps(COMMON | fields, ensure_ascii=False).encode()


def test_a_group_text_has_its_mention_and_quote_apart() -> None:
    message = parse(
        doc(
            msgid="CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=", chatid="CHATID", chattype="group",
            msgtype="text", text={"content": "@RobotA hello robot"},
            quote={"msgtype": "text", "text": {"content": "这是今日的测试情况"}},
        )
    )  # fmt: skip
    assert isinstance(message, BotText)
    assert (message.content, message.mentions) == ("hello robot", ("RobotA",))
    assert message.from_user == "USERID" and message.to_user == "AIBOTID"
    assert message.msg_id == "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="
    assert message.dedup_key == "msg:CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="
    assert (message.chat.chat_type, message.chat.chat_id) == ("group", "CHATID")
    assert message.chat.response_url == "RESPONSEURL" and message.chat.bot_id == "AIBOTID"
    assert message.quote is not None and message.quote.content == "这是今日的测试情况"


@pytest.mark.parametrize(
    ("text", "content", "mentions"),
    [
        ("@RobotA hello robot", "hello robot", ("RobotA",)),
        ("hello@项目开发管理助手 ", "hello", ("项目开发管理助手",)),  # live: the mention at the end
        ("@A ask @B later @C", "ask @B later", ("A", "C")),
        ("write to a@b.com please", "write to a@b.com please", ()),
    ],
)
def test_mentions_of_the_bot_are_stripped_at_either_end(
    text: str, content: str, mentions: tuple[str, ...]
) -> None:
    assert strip_mentions(text) == (content, mentions)


def test_a_single_chat_text_keeps_an_at_sign() -> None:
    message = parse(doc(msgid="m", chattype="single", msgtype="text", text={"content": "@x y"}))
    assert isinstance(message, BotText) and message.content == "@x y" and message.mentions == ()


def test_media_voice_mixed_and_refresh_are_typed() -> None:
    image = parse(doc(msgid="1", chattype="single", msgtype="image", image={"url": "https://i"}))
    assert isinstance(image, BotMedia) and image.url == "https://i" and image.msg_type == "image"
    voice = parse(doc(msgid="2", msgtype="voice", voice={"content": "语音转成的文本"}))
    assert isinstance(voice, BotVoice) and voice.content == "语音转成的文本"
    mixed = parse(
        doc(
            msgid="3", chattype="group", chatid="C", msgtype="mixed",
            mixed={"msg_item": [
                {"msgtype": "text", "text": {"content": "@机器人 这是今日的测试情况"}},
                {"msgtype": "image", "image": {"url": "URL"}},
            ]},
        )
    )  # fmt: skip
    assert isinstance(mixed, BotMixed) and mixed.content == "这是今日的测试情况"
    assert [(i.msg_type, i.url) for i in mixed.items] == [("text", ""), ("image", "URL")]
    refresh = parse(doc(msgid="4", msgtype="stream", stream={"id": "STREAMID"}))
    assert isinstance(refresh, StreamRefresh) and refresh.stream_id == "STREAMID"


def test_events_are_typed_with_the_json_spellings() -> None:
    card = parse(
        doc(
            msgid="e1", create_time=1700000000, chatid="CHATID", chattype="group",
            msgtype="event", event={
                "eventtype": "template_card_event",
                "template_card_event": {
                    "card_type": "vote_interaction", "event_key": "button_replace_text",
                    "task_id": "fBmjTL7", "selected_items": {"selected_item": [
                        {"question_key": "k1", "option_ids": {"option_id": ["one", "two"]}}
                    ]},
                },
            },
        )
    )  # fmt: skip
    assert isinstance(card, BotCardEvent) and card.kind == "template_card_event"
    assert (card.event_key, card.task_id, card.card_type) == (
        "button_replace_text", "fBmjTL7", "vote_interaction"
    )  # fmt: skip
    assert card.selected == {"k1": ("one", "two")} and card.create_time == 1700000000
    body = {"id": "FEEDBACKID", "type": 2, "content": "能再详细一些么",
            "inaccurate_reason_list": [2, 4]}  # fmt: skip
    event = {"eventtype": "feedback_event", "feedback_event": body}
    feedback = parse(doc(msgid="e2", msgtype="event", event=event))
    assert isinstance(feedback, BotFeedback)
    assert (feedback.feedback_id, feedback.rating, feedback.comment, feedback.reasons) == (
        "FEEDBACKID", 2, "能再详细一些么", (2, 4)
    )  # fmt: skip
    enter = parse(doc(msgid="e3", msgtype="event", event={"eventtype": "enter_chat"}))
    assert isinstance(enter, BotEvent) and enter.kind == "enter_chat"


def test_the_same_router_decorators_match_bot_callbacks() -> None:
    router = Router()
    router.add("text", "hello robot", lambda m, c: "text")
    router.add("event", "enter_chat", lambda m, c: "welcome")
    router.add("card_action", "OK", lambda m, c: "card", app="assistant")
    router.add("message", "image", lambda m, c: "image")
    resolve = router.compile()
    group_text = parse(
        doc(msgid="1", chattype="group", msgtype="text", text={"content": "@Bot hello robot"})
    )
    event = {"eventtype": "template_card_event", "template_card_event": {"event_key": "OK"}}
    card = parse(doc(msgid="2", msgtype="event", event=event))
    found = {
        name: resolve(message, "assistant")
        for name, message in [
            ("text", group_text),
            ("enter", parse(doc(msgid="3", msgtype="event", event={"eventtype": "enter_chat"}))),
            ("card", card),
            ("image", parse(doc(msgid="4", msgtype="image", image={"url": "u"}))),
        ]
    }
    assert {k: v[0].handler(None, None) for k, v in found.items() if v} == {  # type: ignore[arg-type]
        "text": "text", "enter": "welcome", "card": "card", "image": "image",
    }  # fmt: skip
    assert resolve(card, "other-bot") is None  # app="assistant" filters by bot


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"msgtype": "text", "text": "x"'])
def test_malformed_plaintext_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(body)


def test_unknown_types_parse_generically_and_keep_raw() -> None:
    odd = parse(doc(msgid="z", msgtype="sticker", sticker={"id": 1}))
    assert odd.msg_type == "sticker" and odd.raw["sticker"] == {"id": 1}


def test_raw_is_immutable_all_the_way_down() -> None:
    odd = parse(doc(msgid="z", msgtype="sticker", sticker={"id": 1, "tags": ["a", {"b": 2}]}))
    with pytest.raises(TypeError):
        odd.raw["sticker"]["id"] = 2
    with pytest.raises(TypeError):
        odd.raw["sticker"]["tags"][1]["b"] = 3
    assert odd.raw["sticker"]["tags"] == ("a", {"b": 2})  # a list arrives as a tuple
    with pytest.raises(TypeError):
        odd.raw["from"]["userid"] = "mallory"
    assert odd.from_user == odd.raw["from"]["userid"] == "USERID"


# -- replies --------------------------------------------------------------------------------


def test_a_long_answer_is_split_on_a_boundary_never_cut_silently() -> None:
    text = "前" * 5000 + "\n" + "后" * 2500  # 22501 bytes, a newline after 15000 bytes
    head, rest = split(text)
    assert head + rest == text and len(head.encode()) <= CONTENT_LIMIT_BYTES
    assert head.endswith("\n")  # on the newline
    unbroken = "字" * 8000  # no newline or space: a character boundary
    head, rest = split(unbroken)
    assert head + rest == unbroken and len(head.encode()) == CONTENT_LIMIT_BYTES - 2
    assert split("short") == ("short", "")


def test_stream_bodies_carry_pictures_only_when_finished() -> None:
    unfinished = stream_body("s1", "a", finish=False, images=[PNG])
    assert "msg_item" not in unfinished["stream"]
    done = stream_body("s1", "a", finish=True, images=[PNG], feedback_id="f")
    (item,) = done["stream"]["msg_item"]
    assert base64.b64decode(item["image"]["base64"]) == PNG
    assert item["image"]["md5"] == hashlib.md5(PNG).hexdigest()
    assert done["stream"]["feedback"] == {"id": "f"}
    card = {"card_type": "text_notice", "main_title": {"title": "t"},
            "card_action": {"type": 1, "url": "https://x"}}  # fmt: skip
    with_card = stream_body("s1", "a", finish=True, card=card)
    assert with_card["msgtype"] == "stream_with_template_card"
    assert with_card["template_card"] == card


def test_reply_limits_are_checked_before_sending() -> None:
    with pytest.raises(ValidationError, match="at most 10"):
        StreamReply("x", images=(PNG,) * 11)
    with pytest.raises(ValidationError, match="JPG or PNG"):
        StreamReply("x", images=(b"GIF89a",))
    with pytest.raises(ValidationError, match=re.escape("feedback.id")):
        TemplateCardReply({"card_type": "text_notice", "main_title": {"title": "t"},
                           "card_action": {"type": 1, "url": "https://x"}},
                          feedback_id="f" * 257)  # fmt: skip
    with pytest.raises(ValidationError, match=re.escape("markdown.content")):
        markdown_body("a" * (CONTENT_LIMIT_BYTES + 1))
    update = UpdateTemplateCardReply({"card_type": "text_notice", "task_id": "other"})
    with pytest.raises(ValidationError, match=re.escape("template_card.task_id")):
        update_body(update, "t-1")
    kept = update_body(UpdateTemplateCardReply({"card_type": "text_notice"}), "t-1")
    assert kept == {
        "response_type": "update_template_card",
        "template_card": {"card_type": "text_notice", "task_id": "t-1"},
    }


def test_media_decryption_matches_the_protocol_vector() -> None:
    """§12 B.3: AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes, no framing."""
    from callback.bots.media import decrypt
    from callback.inbound.crypto import aes_key

    key = base64.b64decode("iE9e3lxpQEjI9hIKt+V4XUi6trnd7y+1rzQMH4UOoT8=")  # a per-URL key
    data = base64.b64decode("3cxtvV8IGBqQNaL1rHeCKOx58UzzZMF/2w3NaeAvFns=")
    assert decrypt(data, key) == b"hello aibot media\n"
    with pytest.raises(BadRequest, match="padding"):
        decrypt(data, aes_key("A" * 43))
    with pytest.raises(BadRequest, match="AES blocks"):
        decrypt(data[:-1], key)
