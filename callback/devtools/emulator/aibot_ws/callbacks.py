"""Callback bodies of the long connection (§3.5, §3.6): as in HTTP mode, except that image,
file and video items carry a per-URL `aeskey` (base64 without '=' padding).

The hub adds the response_url when it sends a message or a template_card_event, so these
builders leave it out.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...aibot.callbacks import Callbacks, Fields
from ...aibot.media import MediaHost
from .records import CallbackKind

MESSAGE_TYPES = frozenset({"text", "image", "mixed", "voice", "file", "video"})
EVENT_TYPES = frozenset({"enter_chat", "template_card_event", "feedback_event"})
Register = Callable[[str, str, str, str, str | None], object]
"""(response_code, chattype, msgid, userid, chatid) -> anything: issue a response_url's code."""


def media_key() -> tuple[bytes, str]:
    """A fresh 32-byte media key and its `aeskey` form (base64 without '=')."""
    key = os.urandom(32)
    return key, base64.b64encode(key).decode().rstrip("=")


def ws_media(
    host: MediaHost,
    data: bytes,
    *,
    filename: str = "file.bin",
    content_type: str = "application/octet-stream",
) -> dict[str, str]:
    """Serve data from host encrypted with its own key; {"url", "aeskey"} for a callback."""
    key, aeskey = media_key()
    url = host.add(data, filename=filename, content_type=content_type, key=key)
    return {"url": url, "aeskey": aeskey}


class WsCallbacks(Callbacks):
    """Callbacks.text/voice/group_text/enter_chat_event/template_card_event/feedback_event as in
    HTTP mode, plus media messages whose items carry an aeskey."""

    def media(self, msgtype: str, item: dict[str, str], **common: Any) -> Fields:
        """An image, file or video message (single chat); item is {"url", "aeskey"}."""
        if msgtype not in ("image", "file", "video"):
            raise ValueError(f"{msgtype} is not a media message")
        if set(item) != {"url", "aeskey"}:
            raise ValueError('a media item is {"url": ..., "aeskey": ...}')
        return self.message(msgtype, dict(item), **common)

    def mixed_media(
        self,
        parts: Sequence[tuple[str, str | dict[str, str]]],
        *,
        chatid: str | None = None,
        **common: Any,
    ) -> Fields:
        """A mixed message of ("text", content) and ("image", {"url", "aeskey"}) parts."""
        items: list[Fields] = []
        for kind, value in parts:
            if kind == "text" and isinstance(value, str):
                items.append({"msgtype": "text", "text": {"content": value}})
            elif kind == "image" and isinstance(value, dict):
                items.append({"msgtype": "image", "image": dict(value)})
            else:
                raise ValueError('parts are ("text", content) or ("image", {"url", "aeskey"})')
        return self.message("mixed", {"msg_item": items}, chatid=chatid, **common)


def fill_callback(
    bot_id: str,
    body: Mapping[str, Any],
    cmd: str,
    now: float,
    response_url_base: str,
    register: Register | None,
) -> tuple[CallbackKind, dict[str, Any]]:
    """A callback body as sent: msgid, create_time (events) and aibotid filled in when
    missing, and on messages and template_card_events a response_url whose code register()
    issues. ValueError for a body a test got wrong (no from.userid, a group without chatid,
    an unknown msgtype or eventtype)."""
    head: dict[str, Any] = {"msgid": secrets.token_hex(16)}
    kind: CallbackKind
    if cmd == "aibot_msg_callback":
        if body.get("msgtype") not in MESSAGE_TYPES:
            raise ValueError(f"a message's msgtype is one of {sorted(MESSAGE_TYPES)}")
        kind = "message"
    else:
        event = body.get("event")
        eventtype = event.get("eventtype") if isinstance(event, dict) else None
        if eventtype not in EVENT_TYPES:
            raise ValueError(f"event.eventtype must be one of {sorted(EVENT_TYPES)}")
        kind = eventtype
        head["create_time"] = int(now)
    head["aibotid"] = bot_id
    fields = head | dict(body)
    sender = fields.get("from")
    userid = sender.get("userid") if isinstance(sender, dict) else None
    if not isinstance(userid, str) or not userid:
        raise ValueError("from.userid is required")
    if fields.get("chattype", "single") not in ("single", "group"):
        raise ValueError("chattype is single or group")
    if fields.get("chattype") == "group" and not isinstance(fields.get("chatid"), str):
        raise ValueError("a group callback needs a chatid")
    if kind in ("message", "template_card_event") and "response_url" not in fields:
        fields = _with_response_url(fields, userid, response_url_base, register)
    return kind, fields


def _with_response_url(
    fields: dict[str, Any], userid: str, base: str, register: Register | None
) -> dict[str, Any]:
    code = secrets.token_urlsafe(24)
    group = fields.get("chattype") == "group"
    chatid = fields.get("chatid") if group else None
    if register is not None:
        chattype = "group" if group else "single"
        register(code, chattype, str(fields["msgid"]), userid, chatid)
    base = base.rstrip("/")
    url = f"{base}/cgi-bin/aibot/response?response_code={code}"
    out: dict[str, Any] = {}
    for key, value in fields.items():
        out[key] = value
        if key == "from":
            out["response_url"] = url
    return out
