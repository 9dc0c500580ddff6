"""What an AI bot receives: its decrypted JSON callbacks as typed, immutable values.

The values extend the app messages a handler already knows (`TextMessage`, `Event`,
`TemplateCardEvent`...), so the same `Router` decorators match them: `@router.text("help")`
answers a member in an app and in a bot chat alike. Bot-only facts travel in `chat` (which bot,
single or group chat, the `response_url`). In a group the @-mention of the bot stays in the
text WeCom sends; here it is stripped from `content` into `mentions`. Anything unknown parses as
a generic `BotMessage` or `BotEvent`, never an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callback.errors import BadRequest
from callback.inbound.base import freeze
from callback.inbound.messages import (
    Event,
    Message,
    SelectedItem,
    TemplateCardEvent,
    TextMessage,
    UserMessage,
)

#: A mention of the bot at the start or the end of a group message ("@RobotA hi", "hi@RobotA ").
_LEADING = re.compile(r"^\s*@(\S+)\s*")
_TRAILING = re.compile(r"\s*@([^\s@]+)\s*$")


@dataclass(frozen=True, slots=True)
class Chat:
    """Where a bot callback comes from, and how to answer it later."""

    bot_id: str = ""
    chat_type: str = "single"  # single | group
    chat_id: str = ""  # group chats only
    response_url: str = ""  # one POST, within an hour (messages and card events)
    corp_id: str = ""  # events only, and not for a company's own bots

    @property
    def is_group(self) -> bool:
        return self.chat_type == "group"


@dataclass(frozen=True, slots=True)
class Quote:
    """The message a member quoted: its type and its text or media URL."""

    msg_type: str
    content: str = ""
    url: str = ""
    aeskey: str = ""  # the long connection's key for this URL (callback mode: none)


@dataclass(frozen=True, slots=True)
class Item:
    """One part of a mixed (text and picture) message."""

    msg_type: str
    content: str = ""
    url: str = ""
    aeskey: str = ""


@dataclass(frozen=True, slots=True)
class BotMessage(UserMessage):
    """Any message a member sent an AI bot."""

    chat: Chat = Chat()
    quote: Quote | None = None


@dataclass(frozen=True, slots=True)
class BotText(TextMessage):
    """Text; in a group, `content` without the mention of the bot, which is in `mentions`."""

    chat: Chat = Chat()
    quote: Quote | None = None
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BotVoice(BotMessage):
    """A voice message, as the text WeCom transcribed (WeCom sends no audio)."""

    content: str = ""


@dataclass(frozen=True, slots=True)
class BotMedia(BotMessage):
    """A picture, file or video: `url` (valid 5 minutes) holds the bytes, encrypted with the
    bot's EncodingAESKey (callback mode) or with `aeskey`, the URL's own key (long connection);
    `ctx.download(message)` fetches and decrypts them."""

    url: str = ""
    aeskey: str = ""


@dataclass(frozen=True, slots=True)
class BotMixed(BotMessage):
    """Text and pictures in one message; `content` joins its texts (mention stripped)."""

    items: tuple[Item, ...] = ()
    content: str = ""
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamRefresh(BotMessage):
    """WeCom asking for the current state of a stream we started (never a handler's)."""

    stream_id: str = ""


@dataclass(frozen=True, slots=True)
class BotEvent(Event):
    """Any bot event by its `eventtype` (enter_chat: a member opened the chat today)."""

    msg_id: str = ""
    chat: Chat = Chat()


@dataclass(frozen=True, slots=True)
class BotCardEvent(TemplateCardEvent):
    """A template card's button, selection or menu in a bot chat: `event_key`, `task_id`,
    `selected` as for apps; answer within its single 5-s attempt (an `UpdateTemplateCard`)."""

    msg_id: str = ""
    chat: Chat = Chat()


@dataclass(frozen=True, slots=True)
class BotFeedback(Event):
    """A member's 👍/👎 on a reply that carried a feedback id (answer: nothing).
    `rating`: 1 accurate, 2 inaccurate, 3 withdrawn; `reasons` only for 2."""

    msg_id: str = ""
    chat: Chat = Chat()
    feedback_id: str = ""
    rating: int = 0
    comment: str = ""
    reasons: tuple[int, ...] = ()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def strip_mentions(text: str) -> tuple[str, tuple[str, ...]]:
    """A group message's text without the bot's mention (at its start or end), and the
    mentioned names."""
    mentions = []
    for pattern in (_LEADING, _TRAILING):
        found = pattern.search(text)
        if found is not None:
            mentions.append(found.group(1))
            text = text[: found.start()] + text[found.end() :]
    return text.strip(), tuple(mentions)


def _quote(value: Any) -> Quote | None:
    doc = _dict(value)
    if not doc:
        return None
    kind = _text(doc.get("msgtype"))
    body = _dict(doc.get(kind))
    texts = [_text(_dict(i.get("text")).get("content")) for i in _items(body)]
    content = _text(body.get("content")) or " ".join(t for t in texts if t)
    return Quote(kind, content, _text(body.get("url")), _text(body.get("aeskey")))


def _items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = body.get("msg_item")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _chat(doc: Mapping[str, Any]) -> Chat:
    sender = _dict(doc.get("from"))
    return Chat(
        bot_id=_text(doc.get("aibotid")),
        chat_type=_text(doc.get("chattype")) or "single",
        chat_id=_text(doc.get("chatid")),
        response_url=_text(doc.get("response_url")),
        corp_id=_text(sender.get("corpid")),
    )


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 is inf
        return 0


def parse(plaintext: bytes) -> Message:
    """A decrypted bot callback (JSON) as a typed value."""
    try:
        doc = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("decrypted bot callback is not valid JSON") from None
    except RecursionError:
        raise BadRequest("decrypted bot callback is nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadRequest("decrypted bot callback is not a JSON object")
    try:
        raw = freeze(doc)
    except RecursionError:
        raise BadRequest("decrypted bot callback is nested too deeply") from None
    kind = _text(doc.get("msgtype"))
    head: dict[str, Any] = {
        "to_user": _text(doc.get("aibotid")),
        "from_user": _text(_dict(doc.get("from")).get("userid")),
        "create_time": _number(doc.get("create_time")),
        "msg_type": kind,
        "raw": raw,
        "plaintext": plaintext,
    }
    chat = _chat(doc)
    msg_id = _text(doc.get("msgid"))
    if kind == "event":
        return _event(doc, head, chat, msg_id)
    body = _dict(doc.get(kind))
    common = head | {"msg_id": msg_id, "chat": chat}
    if kind == "stream":
        return StreamRefresh(**common, stream_id=_text(body.get("id")))
    quote = _quote(doc.get("quote"))
    if kind == "text":
        content = _text(body.get("content"))
        mentions: tuple[str, ...] = ()
        if chat.is_group:
            content, mentions = strip_mentions(content)
        return BotText(**common, content=content, quote=quote, mentions=mentions)
    if kind == "voice":
        return BotVoice(**common, quote=quote, content=_text(body.get("content")))
    if kind in ("image", "file", "video"):
        return BotMedia(
            **common, quote=quote, url=_text(body.get("url")), aeskey=_text(body.get("aeskey"))
        )
    if kind == "mixed":
        items = tuple(
            Item(
                _text(i.get("msgtype")),
                _text(_dict(i.get("text")).get("content")),
                _text(_dict(i.get(_text(i.get("msgtype")))).get("url")),
                _text(_dict(i.get(_text(i.get("msgtype")))).get("aeskey")),
            )
            for i in _items(body)
        )
        text = " ".join(i.content for i in items if i.content)
        content, mentions = strip_mentions(text) if chat.is_group else (text.strip(), ())
        return BotMixed(**common, quote=quote, items=items, content=content, mentions=mentions)
    return BotMessage(**common, quote=quote)


def _event(doc: Mapping[str, Any], head: dict[str, Any], chat: Chat, msg_id: str) -> Message:
    event = _dict(doc.get("event"))
    name = _text(event.get("eventtype"))
    body = _dict(event.get(name))
    common = head | {"event": name, "msg_id": msg_id, "chat": chat}
    if name == "template_card_event":
        selected = _dict(body.get("selected_items")).get("selected_item")
        items = tuple(
            SelectedItem(
                _text(s.get("question_key")),
                tuple(_text(o) for o in _as_list(_dict(s.get("option_ids")).get("option_id"))),
            )
            for s in (selected if isinstance(selected, list) else [])
            if isinstance(s, Mapping)
        )
        return BotCardEvent(
            **common,
            event_key=_text(body.get("event_key")),
            task_id=_text(body.get("task_id")),
            card_type=_text(body.get("card_type")),
            selected_items=items,
        )
    if name == "feedback_event":
        reasons = tuple(_number(r) for r in _as_list(body.get("inaccurate_reason_list")))
        return BotFeedback(
            **common,
            feedback_id=_text(body.get("id")),
            rating=_number(body.get("type")),
            comment=_text(body.get("content")),
            reasons=reasons,
        )
    return BotEvent(**common)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value in (None, "") else [value]


#: Every bot value that carries a `chat` (for `chat_of`).
BotCallback = BotMessage | BotText | BotEvent | BotCardEvent | BotFeedback


def chat_of(message: Message) -> Chat:
    """The chat of a bot callback (an empty one for anything else)."""
    chat = getattr(message, "chat", None)
    return chat if isinstance(chat, Chat) else Chat()
