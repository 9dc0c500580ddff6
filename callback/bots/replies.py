"""What an AI bot answers: the reply values a handler may return, and their JSON bodies.

A handler's `str` answers a message with a finished stream (and an enter_chat with a welcome
text); a generator streams. These values carry what plain text cannot: pictures shown with
the final answer (`StreamReply`), a template card (`TemplateCardReply`), both at once
(`StreamWithCard`), and a card update for a card event (`UpdateTemplateCardReply`, shared with
apps). WeCom's limits are checked here, before anything is sent: a stream's content is at most
20480 bytes (a longer answer is split, never cut), pictures at most 10 of 10 MB each, JPG or
PNG, only with the final snapshot; a feedback id at most 256 bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callback.errors import ValidationError
from callback.inbound.replies import Reply, TextReply, UpdateTemplateCardReply
from callback.outbound.card_rules import check_card

CONTENT_LIMIT_BYTES = 20480
FEEDBACK_LIMIT_BYTES = 256
IMAGES_MAX = 10
IMAGE_LIMIT_BYTES = 10 * 1024 * 1024
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def check_images(images: Sequence[bytes]) -> None:
    if len(images) > IMAGES_MAX:
        raise ValidationError(
            f"stream.msg_item: {len(images)} pictures, at most {IMAGES_MAX}",
            field="stream.msg_item", value=len(images), limit=f"at most {IMAGES_MAX} pictures",
        )  # fmt: skip
    for n, image in enumerate(images):
        where = f"stream.msg_item[{n}].image"
        if len(image) > IMAGE_LIMIT_BYTES:
            raise ValidationError(
                f"{where}: {len(image)} bytes, at most 10 MB",
                field=where, value=len(image), limit="at most 10 MB before base64",
            )  # fmt: skip
        if not image.startswith(_IMAGE_MAGIC):
            raise ValidationError(
                f"{where}: not a JPG or PNG", field=where, value=image[:8], limit="JPG or PNG"
            )


def check_feedback_id(feedback_id: str) -> None:
    if len(feedback_id.encode()) > FEEDBACK_LIMIT_BYTES:
        raise ValidationError(
            f"feedback.id: {len(feedback_id.encode())} bytes, at most {FEEDBACK_LIMIT_BYTES}",
            field="feedback.id", value=feedback_id, limit=f"at most {FEEDBACK_LIMIT_BYTES} bytes",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StreamReply(Reply):
    """A bot's final answer with pictures (JPG/PNG bytes, shown under the text); on an app,
    the text alone."""

    content: str = ""
    images: tuple[bytes, ...] = ()
    msg_type = "stream"

    def __post_init__(self) -> None:
        check_images(self.images)

    def body(self) -> dict[str, Any]:
        return {"Content": self.content}


@dataclass(frozen=True, slots=True)
class TemplateCardReply(Reply):
    """A template card (the send API's field names) answering a message or an enter_chat."""

    card: Mapping[str, Any]
    feedback_id: str = ""
    msg_type = "template_card"

    def __post_init__(self) -> None:
        check_card(self.card)
        check_feedback_id(self.feedback_id)

    def body(self) -> dict[str, Any]:
        return {"TemplateCard": dict(self.card)}


@dataclass(frozen=True, slots=True)
class StreamWithCard(Reply):
    """A streamed text and a template card in one answer (the card goes once per message)."""

    content: str
    card: Mapping[str, Any]
    images: tuple[bytes, ...] = field(default=())
    msg_type = "stream_with_template_card"

    def __post_init__(self) -> None:
        check_card(self.card)
        check_images(self.images)

    def body(self) -> dict[str, Any]:
        return {"Content": self.content}


def for_app(reply: Reply | None) -> Reply | None:
    """The same answer for an application: a stream's text as a text (pictures and a card
    beside a stream have no app form; a template card is pushed as a card message)."""
    if isinstance(reply, StreamReply | StreamWithCard):
        return TextReply(reply.content) if reply.content else None
    return reply


def split(content: str, limit: int = CONTENT_LIMIT_BYTES) -> tuple[str, str]:
    """`content` cut to at most `limit` UTF-8 bytes on a character boundary, preferring the
    last newline or space of its second half; (head, the rest)."""
    data = content.encode()
    if len(data) <= limit:
        return content, ""
    head = data[:limit].decode(errors="ignore")
    for mark in ("\n", " "):
        cut = head.rfind(mark)
        if cut > len(head) // 2:
            head = head[: cut + 1]
            break
    return head, content[len(head) :]


def _images(images: Sequence[bytes]) -> list[dict[str, Any]]:
    return [
        {
            "msgtype": "image",
            "image": {
                "base64": base64.b64encode(raw).decode(),
                "md5": hashlib.md5(raw).hexdigest(),  # noqa: S324 - WeCom's checksum, not security
            },
        }
        for raw in images
    ]


def stream_body(
    stream_id: str,
    content: str,
    *,
    finish: bool,
    images: Sequence[bytes] = (),
    feedback_id: str = "",
    card: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A stream snapshot, with pictures only when finished and the card where one goes."""
    stream: dict[str, Any] = {"id": stream_id, "finish": finish, "content": content}
    if finish and images:
        stream["msg_item"] = _images(images)
    if feedback_id:
        stream["feedback"] = {"id": feedback_id}
    if card is None:
        return {"msgtype": "stream", "stream": stream}
    return {"msgtype": "stream_with_template_card", "stream": stream, "template_card": dict(card)}


def card_body(card: Mapping[str, Any], feedback_id: str = "") -> dict[str, Any]:
    """A template card answer."""
    body = dict(card)
    if feedback_id:
        body["feedback"] = {"id": feedback_id}
    return {"msgtype": "template_card", "template_card": body}


def welcome_body(reply: Reply) -> dict[str, Any] | None:
    """An enter_chat answer: a text (from a str) or a template card; None for anything else."""
    if isinstance(reply, TemplateCardReply):
        return card_body(reply.card, reply.feedback_id)
    content = getattr(reply, "content", None)
    if isinstance(content, str) and content:
        return {"msgtype": "text", "text": {"content": content}}
    return None


def update_body(reply: UpdateTemplateCardReply, task_id: str) -> dict[str, Any]:
    """A card event's answer: the card that replaces the clicked one (its task_id kept)."""
    card = dict(reply.card)
    card.setdefault("task_id", task_id)
    if card["task_id"] != task_id:
        raise ValidationError(
            f"template_card.task_id: {card['task_id']!r}, but the clicked card's is {task_id!r}",
            field="template_card.task_id", value=card["task_id"], limit="the event's task_id",
        )  # fmt: skip
    return {"response_type": "update_template_card", "template_card": card}


def markdown_body(content: str) -> dict[str, Any]:
    """What goes to a response_url: markdown, at most 20480 bytes."""
    if len(content.encode()) > CONTENT_LIMIT_BYTES:
        raise ValidationError(
            f"markdown.content: {len(content.encode())} bytes, at most {CONTENT_LIMIT_BYTES}",
            field="markdown.content", value=len(content.encode()),
            limit=f"at most {CONTENT_LIMIT_BYTES} bytes",
        )  # fmt: skip
    return {"msgtype": "markdown", "markdown": {"content": content}}
