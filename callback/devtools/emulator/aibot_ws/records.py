"""What the long-connection emulator saw: connections, evictions, frames, callbacks, and per
conversation what the member saw (streams, cards, welcomes, card updates, pushes) and refusals."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

CallbackKind = Literal[
    "message", "enter_chat", "template_card_event", "feedback_event", "disconnected_event"
]
ShownKind = Literal["reply", "welcome", "update", "push"]


def _json(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


@dataclass(frozen=True)
class WsConnection:
    """One WebSocket connection; bot_id is set by a successful aibot_subscribe.

    close_reason: "client" (the client closed or the link broke), "idle" (no frame for
    idle_timeout_s), "evicted", "dropped" (drop_connection), "reset", "server_stop".
    """

    conn_id: int
    peer: str
    opened_at: float
    bot_id: str | None = None
    subscribed_at: float | None = None
    evicted_at: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None
    frames_in: int = 0

    @property
    def open(self) -> bool:
        """Whether the socket is still open."""
        return self.closed_at is None

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "conn_id": self.conn_id,
            "peer": self.peer,
            "opened_at": self.opened_at,
            "bot_id": self.bot_id,
            "subscribed_at": self.subscribed_at,
            "evicted_at": self.evicted_at,
            "closed_at": self.closed_at,
            "close_reason": self.close_reason,
            "frames_in": self.frames_in,
            "open": self.open,
        }


@dataclass(frozen=True)
class WsEviction:
    """A newer subscriber (by) took the bot's connection from an older one (evicted)."""

    bot_id: str
    evicted: int
    by: int
    at: float
    req_id: str
    """The req_id of the disconnected_event sent to the evicted connection."""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "bot_id": self.bot_id,
            "evicted": self.evicted,
            "by": self.by,
            "at": self.at,
            "req_id": self.req_id,
        }


@dataclass(frozen=True)
class WsFrame:
    """A frame on a connection: "in" from the client, "out" to it, "dropped" (an ack a fault
    kept back). frame is the parsed JSON, or the raw text when it did not parse."""

    conn_id: int
    direction: Literal["in", "out", "dropped"]
    frame: Mapping[str, Any] | str
    at: float

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        frame = self.frame if isinstance(self.frame, str) else dict(self.frame)
        return {"conn_id": self.conn_id, "direction": self.direction, "frame": frame, "at": self.at}


@dataclass(frozen=True)
class WsCallback:
    """A callback the server sent, bound to its req_id and kind."""

    req_id: str
    kind: CallbackKind
    bot_id: str
    conn_id: int
    body: Mapping[str, Any]
    sent_at: float
    chattype: str
    chatid: str
    """The conversation: the group chatid, or the user's userid in a single chat."""
    task_id: str | None = None
    responses: int = 0
    """Responses accepted on this req_id."""
    closed: bool = False
    """True once a plain template_card answered it: further responses get 846606."""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "req_id": self.req_id,
            "kind": self.kind,
            "bot_id": self.bot_id,
            "conn_id": self.conn_id,
            "body": dict(self.body),
            "sent_at": self.sent_at,
            "chattype": self.chattype,
            "chatid": self.chatid,
            "task_id": self.task_id,
            "responses": self.responses,
            "closed": self.closed,
        }


@dataclass(frozen=True)
class WsStream:
    """A streaming message as the member saw it: every accepted frame's content in order."""

    stream_id: str
    req_id: str
    snapshots: tuple[str, ...]
    finished: bool
    feedback_id: str | None
    started_at: float
    updated_at: float
    truncated: bool = False
    """Some frame's content was over 20480 bytes and was shown cut."""
    images: tuple[bytes, ...] = ()
    """msg_item images shown at finish (with accept_msg_item)."""
    ignored_msg_item: bool = False
    """A frame carried msg_item that was accepted but not shown (accept_msg_item off)."""
    card: Mapping[str, Any] | None = None
    """The template_card of a stream_with_template_card reply."""

    @property
    def content(self) -> str:
        """What the bubble shows now (the final content once finished)."""
        return self.snapshots[-1] if self.snapshots else ""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API (images as base64)."""
        return {
            "type": "stream",
            "stream_id": self.stream_id,
            "req_id": self.req_id,
            "snapshots": list(self.snapshots),
            "content": self.content,
            "finished": self.finished,
            "feedback_id": self.feedback_id,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "truncated": self.truncated,
            "images": [base64.b64encode(image).decode() for image in self.images],
            "ignored_msg_item": self.ignored_msg_item,
            "card": _json(self.card),
        }


@dataclass(frozen=True)
class WsShown:
    """Anything else the member saw: a reply (card, markdown, media), a welcome, a card
    update or a proactive push; msgtype is "update_template_card" for an update."""

    kind: ShownKind
    msgtype: str
    body: Mapping[str, Any]
    req_id: str | None
    at: float

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "type": self.kind,
            "msgtype": self.msgtype,
            "body": dict(self.body),
            "req_id": self.req_id,
            "at": self.at,
        }


@dataclass(frozen=True)
class WsRefusal:
    """A frame answered with a non-zero errcode (nothing of it was shown)."""

    conn_id: int
    cmd: str | None
    req_id: str | None
    errcode: int
    errmsg: str
    body: Mapping[str, Any] | None
    at: float
    bot_id: str | None = None
    chatid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "conn_id": self.conn_id,
            "cmd": self.cmd,
            "req_id": self.req_id,
            "errcode": self.errcode,
            "errmsg": self.errmsg,
            "body": _json(self.body),
            "at": self.at,
            "bot_id": self.bot_id,
            "chatid": self.chatid,
        }


@dataclass(frozen=True)
class WsConversation:
    """One conversation of a bot (a group chatid, or a user in a single chat): what the member
    saw in order (streams and other messages) and the frames refused for it."""

    bot_id: str
    chattype: str
    chatid: str
    items: tuple[WsStream | WsShown, ...]
    refused: tuple[WsRefusal, ...]

    @property
    def streams(self) -> list[WsStream]:
        """The streams, in the order they started."""
        return [item for item in self.items if isinstance(item, WsStream)]

    def stream(self, stream_id: str) -> WsStream:
        """The (first) stream with this id; KeyError if none."""
        for item in self.streams:
            if item.stream_id == stream_id:
                return item
        raise KeyError(stream_id)

    def shown(self, kind: ShownKind | None = None, msgtype: str | None = None) -> list[WsShown]:
        """Non-stream items, optionally only of kind and/or msgtype."""
        return [
            item
            for item in self.items
            if isinstance(item, WsShown)
            and kind in (None, item.kind)
            and msgtype in (None, item.msgtype)
        ]

    @property
    def cards(self) -> list[WsShown]:
        """template_card messages (replies, welcomes and pushes)."""
        return self.shown(msgtype="template_card")

    @property
    def welcomes(self) -> list[WsShown]:
        """Welcome messages."""
        return self.shown("welcome")

    @property
    def card_updates(self) -> list[WsShown]:
        """Card updates."""
        return self.shown("update")

    @property
    def pushes(self) -> list[WsShown]:
        """aibot_send_msg messages."""
        return self.shown("push")

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "bot_id": self.bot_id,
            "chattype": self.chattype,
            "chatid": self.chatid,
            "items": [item.to_json() for item in self.items],
            "refused": [refusal.to_json() for refusal in self.refused],
        }


@dataclass(frozen=True)
class WsMedia:
    """A temporary media file uploaded over the long connection (§3.10), valid 3 days."""

    media_id: str
    bot_id: str
    media_type: str
    filename: str
    md5: str
    data: bytes
    created_at: float

    @property
    def size(self) -> int:
        """Bytes."""
        return len(self.data)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API (without the bytes)."""
        return {
            "media_id": self.media_id,
            "bot_id": self.bot_id,
            "type": self.media_type,
            "filename": self.filename,
            "md5": self.md5,
            "size": self.size,
            "created_at": self.created_at,
        }
