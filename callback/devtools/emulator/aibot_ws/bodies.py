"""Body checks of the dev frames that show something (§3.7, §3.8, §4): stream, markdown,
template_card, media, welcome text and card updates. Pure functions raising ApiError."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..cards import TASK_ID, check_card
from ..errors import CONTENT_TOO_LONG, INVALID_PARAMETER, ApiError
from ..fields import JsonObject, mapping, nbytes, string
from .knobs import WsKnobs

MAX_CONTENT_BYTES = 20480
MAX_FEEDBACK_ID_BYTES = 256
MAX_MSG_ITEMS = 10
MAX_IMAGE_BYTES = 10 << 20
MEDIA_TYPES = frozenset({"file", "image", "voice", "video"})
INVALID_MESSAGE_TYPE = 40008
EMPTY_CONTENT = 44004
INVALID_MEDIA_ID = 40007

MediaOk = Callable[[str], bool]
"""Whether a media_id is a live upload of this bot."""


@dataclass(frozen=True)
class StreamFrame:
    """A checked stream part: content already cut to 20480 bytes when the knob says so."""

    stream_id: str
    finish: bool
    content: str
    truncated: bool
    feedback_id: str | None
    images: tuple[bytes, ...]
    ignored_msg_item: bool
    """msg_item was given but accept_msg_item is off: accepted, not shown."""


def body_of(frame: Mapping[str, Any]) -> JsonObject:
    """The frame's body object; 40058 when it is missing or not an object."""
    body = frame.get("body")
    if not isinstance(body, dict):
        raise ApiError(INVALID_PARAMETER, "body must be an object")
    return body


def feedback_id(parent: JsonObject, where: str) -> str | None:
    """parent.feedback.id when given; 40058 unless a string of at most 256 bytes."""
    feedback = parent.get("feedback")
    if feedback is None:
        return None
    value = feedback.get("id") if isinstance(feedback, dict) else None
    if not isinstance(value, str) or nbytes(value) > MAX_FEEDBACK_ID_BYTES:
        raise ApiError(INVALID_PARAMETER, f"{where}.feedback.id must be a string of ≤ 256 bytes")
    return value


def check_stream(body: JsonObject, knobs: WsKnobs) -> StreamFrame:
    """The stream part of an aibot_respond_msg body."""
    stream = mapping(body, "stream", required=INVALID_PARAMETER) or {}
    stream_id = string(stream, "id", where="stream", required=INVALID_PARAMETER)
    finish = stream.get("finish", False)
    if not isinstance(finish, bool):
        raise ApiError(INVALID_PARAMETER, "stream.finish must be true or false")
    content = string(stream, "content", where="stream")
    truncated = nbytes(content) > MAX_CONTENT_BYTES
    if truncated and knobs.content_overflow == "reject":
        raise ApiError(CONTENT_TOO_LONG, f"stream.content is over {MAX_CONTENT_BYTES} bytes")
    if truncated:
        content = content.encode()[:MAX_CONTENT_BYTES].decode("utf-8", errors="ignore")
    feedback = feedback_id(stream, "stream")
    items = stream.get("msg_item")
    images: tuple[bytes, ...] = ()
    if items is not None:
        if not finish:
            raise ApiError(INVALID_PARAMETER, "stream.msg_item only in the finish=true frame")
        if knobs.accept_msg_item:
            images = _msg_items(items)
    ignored = items is not None and not knobs.accept_msg_item
    return StreamFrame(stream_id, finish, content, truncated, feedback, images, ignored)


def _msg_items(items: object) -> tuple[bytes, ...]:
    if not isinstance(items, list) or len(items) > MAX_MSG_ITEMS:
        raise ApiError(INVALID_PARAMETER, "stream.msg_item is a list of at most 10 images")
    images: list[bytes] = []
    for index, item in enumerate(items):
        where = f"stream.msg_item[{index}]"
        image = item.get("image") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("msgtype") != "image" or image is None:
            raise ApiError(INVALID_PARAMETER, f"{where} must be an image item")
        encoded = string(image, "base64", where=f"{where}.image", required=INVALID_PARAMETER)
        md5 = string(image, "md5", where=f"{where}.image", required=INVALID_PARAMETER)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(INVALID_PARAMETER, f"{where}.image.base64 is not base64") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(INVALID_PARAMETER, f"{where} is over 10 MB")
        if hashlib.md5(data).hexdigest() != md5.lower():  # noqa: S324 - the protocol's checksum
            raise ApiError(INVALID_PARAMETER, f"{where}.image.md5 does not match")
        images.append(data)
    return tuple(images)


def check_markdown(body: JsonObject) -> None:
    """A markdown body: content 1..20480 bytes, feedback.id ≤ 256 bytes."""
    part = mapping(body, "markdown", required=INVALID_PARAMETER) or {}
    string(part, "content", where="markdown", required=EMPTY_CONTENT, max_bytes=MAX_CONTENT_BYTES)
    feedback_id(part, "markdown")


def check_template_card(body: JsonObject, key: str = "template_card") -> JsonObject:
    """A template card (§4) under body[key]; returns it. The app API's card checks (42027-42046)
    plus feedback.id; multiple_interaction may go without task_id (§4)."""
    card = mapping(body, key, required=INVALID_PARAMETER) or {}
    checked = card
    if card.get("card_type") == "multiple_interaction" and card.get("task_id") is None:
        checked = {**card, "task_id": "none"}
    check_card(checked)
    feedback_id(card, key)
    return card


def check_media(body: JsonObject, msgtype: str, media_ok: MediaOk) -> None:
    """{"msgtype": "file", "file": {"media_id": ...}} and the like; video title/description."""
    part = mapping(body, msgtype, required=INVALID_PARAMETER) or {}
    media_id = string(part, "media_id", where=msgtype, required=INVALID_MEDIA_ID)
    if not media_ok(media_id):
        raise ApiError(INVALID_MEDIA_ID, f"{msgtype}.media_id is not a live upload of this bot")
    if msgtype == "video":
        string(part, "title", where="video", max_bytes=128)
        string(part, "description", where="video", max_bytes=512)


def check_shown_body(body: JsonObject, allowed: frozenset[str], media_ok: MediaOk) -> str:
    """A markdown, template_card or media body whose msgtype is allowed; returns the msgtype."""
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str) or msgtype not in allowed:
        raise ApiError(INVALID_MESSAGE_TYPE, f"msgtype {msgtype!r} is not allowed here")
    if msgtype == "markdown":
        check_markdown(body)
    elif msgtype == "template_card":
        check_template_card(body)
    elif msgtype in MEDIA_TYPES:
        check_media(body, msgtype, media_ok)
    return msgtype


def check_welcome(body: JsonObject) -> str:
    """A welcome (§2.8.1): text with content, or a template_card; returns the msgtype."""
    msgtype = body.get("msgtype")
    if msgtype == "text":
        part = mapping(body, "text", required=INVALID_PARAMETER) or {}
        string(part, "content", where="text", required=EMPTY_CONTENT)
        return "text"
    if msgtype == "template_card":
        check_template_card(body)
        return "template_card"
    raise ApiError(INVALID_MESSAGE_TYPE, f"a welcome is text or template_card, not {msgtype!r}")


def check_update(body: JsonObject, task_id: str | None) -> JsonObject:
    """update_template_card (§2.8.5): response_type, no msgtype, userids a list of strings,
    the card's task_id the event's. Returns the card."""
    if body.get("response_type") != "update_template_card":
        raise ApiError(INVALID_PARAMETER, 'response_type must be "update_template_card"')
    if "msgtype" in body:
        raise ApiError(INVALID_PARAMETER, "update_template_card sets response_type, not msgtype")
    userids = body.get("userids")
    if userids is not None and (
        not isinstance(userids, list) or not all(isinstance(u, str) and u for u in userids)
    ):
        raise ApiError(INVALID_PARAMETER, "userids must be a list of userids")
    card = check_template_card(body)
    if card.get("task_id") != task_id:
        raise ApiError(TASK_ID, "template_card.task_id is not the event's task_id")
    return card
