"""Per-conversation state of the long connection: what the member saw, stream lifetimes and the
30/min, 1000/h message windows (§3.7, §5). Not locked itself: the hub calls it under its lock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ApiError
from .bodies import StreamFrame
from .knobs import WsKnobs
from .records import ShownKind, WsConversation, WsRefusal, WsShown, WsStream

RATE_LIMITED = 846607
STREAM_EXPIRED = 846608
MINUTE = 60.0
HOUR = 3600.0

ConvKey = tuple[str, str, str]
"""(bot_id, chattype, chatid): chatid is the group's chatid or, in a single chat, the userid."""


def stream_expired(stream: WsStream, now: float, knobs: WsKnobs) -> str | None:
    """Why an update to stream at now is refused (846608), or None while it lives."""
    if stream.finished:
        return "the stream has finished"
    if knobs.stream_lifetime == "doc6":
        if now >= stream.started_at + knobs.stream_lifetime_s:
            return f"{knobs.stream_lifetime_s:g} s passed since the stream's first frame"
        return None
    if now >= stream.updated_at + knobs.stream_idle_s:
        return f"{knobs.stream_idle_s:g} s passed without an update"
    if now >= stream.started_at + knobs.stream_absolute_s:
        return f"{knobs.stream_absolute_s:g} s passed since the stream's first frame"
    return None


@dataclass
class Conversation:
    """Mutable state of one conversation."""

    key: ConvKey
    items: list[WsStream | WsShown] = field(default_factory=list)
    refused: list[WsRefusal] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def frozen(self) -> WsConversation:
        """An immutable copy for readers."""
        bot_id, chattype, chatid = self.key
        return WsConversation(bot_id, chattype, chatid, tuple(self.items), tuple(self.refused))

    def check_rate(self, now: float, knobs: WsKnobs) -> None:
        """846607 when one more message would pass 30 in 60 s or 1000 in 3600 s."""
        self.sent_at = [t for t in self.sent_at if t > now - HOUR]
        if len(self.sent_at) >= knobs.per_hour:
            raise ApiError(RATE_LIMITED, f"more than {knobs.per_hour} messages in an hour")
        if sum(t > now - MINUTE for t in self.sent_at) >= knobs.per_minute:
            raise ApiError(RATE_LIMITED, f"more than {knobs.per_minute} messages in a minute")

    def count(self, now: float) -> None:
        """Count one message towards the windows."""
        self.sent_at.append(now)

    def show(
        self, kind: ShownKind, msgtype: str, body: Mapping[str, Any], req_id: str | None, now: float
    ) -> None:
        """Record a non-stream item the member saw."""
        self.items.append(WsShown(kind, msgtype, body, req_id, now))

    def find_stream(self, req_id: str, stream_id: str) -> int | None:
        """Index in items of the stream stream_id opened on req_id."""
        for index, item in enumerate(self.items):
            if isinstance(item, WsStream) and (item.req_id, item.stream_id) == (req_id, stream_id):
                return index
        return None

    def stream_frame(
        self,
        req_id: str,
        frame: StreamFrame,
        now: float,
        knobs: WsKnobs,
        card: Mapping[str, Any] | None = None,
    ) -> None:
        """Apply one stream frame: open the stream or update it (846608 past its lifetime,
        846607 when it would pass the message windows)."""
        index = self.find_stream(req_id, frame.stream_id)
        if index is None:
            self.check_rate(now, knobs)
            self.count(now)
            self.items.append(
                WsStream(
                    frame.stream_id,
                    req_id,
                    (frame.content,),
                    frame.finish,
                    frame.feedback_id,
                    now,
                    now,
                    frame.truncated,
                    frame.images,
                    frame.ignored_msg_item,
                    card,
                )
            )
            return
        stream = self.items[index]
        assert isinstance(stream, WsStream)
        reason = stream_expired(stream, now, knobs)
        if reason is not None:
            raise ApiError(STREAM_EXPIRED, reason)
        if knobs.count_stream_frames:
            self.check_rate(now, knobs)
            self.count(now)
        self.items[index] = replace(
            stream,
            snapshots=(*stream.snapshots, frame.content),
            finished=frame.finish,
            updated_at=now,
            truncated=stream.truncated or frame.truncated,
            images=stream.images + frame.images,
            ignored_msg_item=stream.ignored_msg_item or frame.ignored_msg_item,
            card=stream.card if card is None else card,
        )
