"""The §2.8 reply matrix and the field rules of stream, card and feedback replies. Pure checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .envelope import Issue

MAX_CONTENT_BYTES = 20480
MAX_FEEDBACK_ID_BYTES = 256
MAX_MSG_ITEMS = 10
MAX_IMAGE_BYTES = 10 << 20
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
ALLOWED: Mapping[str, frozenset[str]] = {
    "message": frozenset({"stream", "template_card", "stream_with_template_card"}),
    "refresh": frozenset({"stream", "stream_with_template_card"}),
    "enter_chat": frozenset({"text", "template_card"}),
    "template_card_event": frozenset({"update_template_card"}),
    "feedback_event": frozenset(),
}
"""Inbound kind -> the passive reply types it allows besides "no reply" (§2.8)."""
EMPTY_ALLOWED = frozenset({"message", "enter_chat", "template_card_event", "feedback_event"})
"""Inbound kinds that may be answered with no reply (a refresh may not)."""


def reply_type(reply: Mapping[str, Any]) -> str:
    """update_template_card (response_type) or the msgtype; '' if neither is a string."""
    if reply.get("response_type") == "update_template_card":
        return "update_template_card"
    msgtype = reply.get("msgtype")
    return msgtype if isinstance(msgtype, str) else ""


def check_type(kind: str, reply: Mapping[str, Any] | None) -> list[Issue]:
    """The reply (None = no reply) is one the matrix allows for this inbound kind."""
    if reply is None:
        if kind in EMPTY_ALLOWED:
            return []
        return [("reply.type", f"no reply to a {kind}; allowed: {sorted(ALLOWED[kind])}")]
    found = reply_type(reply)
    if found in ALLOWED[kind]:
        return []
    allowed = sorted(ALLOWED[kind]) + (["no reply"] if kind in EMPTY_ALLOWED else [])
    return [("reply.type", f"{found or 'no msgtype'} reply to a {kind}; allowed: {allowed}")]


def utf8_size(text: str) -> int:
    """Length in UTF-8 bytes."""
    return len(text.encode())


def truncate_utf8(text: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """The longest prefix of text that fits in limit UTF-8 bytes (never splits a character)."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def feedback_id(parent: Mapping[str, Any], where: str) -> tuple[str | None, list[Issue]]:
    """parent.feedback.id if set, with a problem if it is not a string of ≤ 256 bytes."""
    feedback = parent.get("feedback")
    if feedback is None:
        return None, []
    value = feedback.get("id") if isinstance(feedback, dict) else None
    if not isinstance(value, str):
        return None, [("feedback.size", f"{where}.feedback.id is {value!r}")]
    if utf8_size(value) > MAX_FEEDBACK_ID_BYTES:
        return None, [("feedback.size", f"{where}.feedback.id has {utf8_size(value)} bytes")]
    return value, []


def check_card(card: Any, where: str = "template_card") -> tuple[str | None, list[Issue]]:
    """A template card's card_type and feedback.id; returns the feedback id."""
    if not isinstance(card, dict):
        return None, [("card.type", f"{where} is {type(card).__name__}, not an object")]
    issues: list[Issue] = []
    if card.get("card_type") not in CARD_TYPES:
        issues.append(("card.type", f"{where}.card_type {card.get('card_type')!r}"))
    feedback, problems = feedback_id(card, where)
    return feedback, issues + problems


@dataclass(frozen=True)
class StreamReply:
    """One stream object as the member would see it (content already cut to 20480 bytes)."""

    id: str | None
    finish: bool
    content: str
    images: tuple[bytes, ...]
    feedback_id: str | None


def parse_stream(stream: Any) -> tuple[StreamReply | None, list[Issue]]:
    """Read reply.stream (§2.8.2); None when it is not an object at all."""
    if not isinstance(stream, dict):
        return None, [("stream.id", f"stream is {type(stream).__name__}, not an object")]
    issues: list[Issue] = []
    stream_id = stream.get("id")
    if not isinstance(stream_id, str) or not stream_id:
        issues.append(("stream.id", f"stream.id is {stream_id!r}"))
        stream_id = None
    finish = stream.get("finish", False)
    if not isinstance(finish, bool):
        issues.append(("stream.finish", f"stream.finish is {finish!r}"))
        finish = False
    content = stream.get("content", "")
    if not isinstance(content, str):
        issues.append(("stream.content", f"stream.content is {type(content).__name__}"))
        content = ""
    if utf8_size(content) > MAX_CONTENT_BYTES:
        issues.append(("stream.content.size", f"stream.content has {utf8_size(content)} bytes"))
        content = truncate_utf8(content)
    images: tuple[bytes, ...] = ()
    if "msg_item" in stream:
        if finish:
            images, problems = _images(stream["msg_item"])
            issues += problems
        else:
            issues.append(("stream.msg_item.finish", "msg_item in a finish=false reply"))
    feedback, problems = feedback_id(stream, "stream")
    return StreamReply(stream_id, finish, content, images, feedback), issues + problems


def _images(items: Any) -> tuple[tuple[bytes, ...], list[Issue]]:
    if not isinstance(items, list):
        return (), [("stream.msg_item.image", f"msg_item is {type(items).__name__}, not a list")]
    issues: list[Issue] = []
    if len(items) > MAX_MSG_ITEMS:
        issues.append(("stream.msg_item.count", f"{len(items)} msg_item entries"))
    images = []
    for index, item in enumerate(items[:MAX_MSG_ITEMS]):
        image, problem = _image(item)
        if problem:
            issues.append(("stream.msg_item.image", f"msg_item[{index}]: {problem}"))
        else:
            images.append(image)
    return tuple(images), issues


def _image(item: Any) -> tuple[bytes, str]:
    if not isinstance(item, dict) or item.get("msgtype") != "image":
        return b"", "not {'msgtype': 'image', ...}"
    image = item.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("base64"), str):
        return b"", "image.base64 missing"
    try:
        raw = base64.b64decode(image["base64"], validate=True)
    except (binascii.Error, ValueError):
        return b"", "image.base64 is not base64"
    if len(raw) > MAX_IMAGE_BYTES:
        return b"", f"image of {len(raw)} bytes (limit 10 MB)"
    md5 = hashlib.md5(raw).hexdigest()  # noqa: S324 - the protocol's checksum
    if image.get("md5") != md5:
        return b"", f"image.md5 {image.get('md5')!r}, the bytes' md5 is {md5}"
    return raw, ""
