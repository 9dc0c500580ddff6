"""The long connection's knobs: every point the notes leave UNCONFIRMED, with its default.

Times named `*_s` are seconds. Windows that the protocol measures (reply windows, stream
lifetimes, rate windows, upload sessions, media validity) use the Emulator's clock, so a test
moves them with `Emulator.advance()`; socket timings (idle close, eviction delay, ack delays) are
real time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args

StreamLifetime = Literal["doc6", "idle6_abs10"]
"""doc6: a stream takes updates for stream_lifetime_s from its first frame (the doc).
idle6_abs10: until stream_idle_s without an update or stream_absolute_s from its first frame
(observed)."""
ContentOverflow = Literal["truncate", "reject"]
ChunkBase = Literal["either", "zero", "one"]
EvictClose = Literal["abrupt", "close_frame"]


@dataclass(frozen=True)
class WsKnobs:
    """How the emulated long-connection server behaves where the notes are unsure."""

    evict_delay_s: float = 2.0
    """An evicted connection is closed this long after its disconnected_event (§3.9)."""
    evict_close: EvictClose = "abrupt"
    """abrupt: the TCP connection is cut with no close frame (observed); or a close frame."""
    idle_timeout_s: float = 90.0
    """A connection that sent no frame for this long is closed (§3.4, UNCONFIRMED value)."""
    reply_window_s: float = 5.0
    """Welcome and card-update replies are accepted this long after their event (§3.7)."""
    message_reply_window_s: float = 24 * 3600.0
    """aibot_respond_msg is accepted this long after the message callback (§5: 24 h)."""
    stream_lifetime: StreamLifetime = "doc6"
    stream_lifetime_s: float = 360.0
    stream_idle_s: float = 360.0
    stream_absolute_s: float = 600.0
    per_minute: int = 30
    """Messages (replies and pushes) one conversation takes in 60 s (§5)."""
    per_hour: int = 1000
    """Messages one conversation takes in 3600 s (§5)."""
    count_stream_frames: bool = False
    """False: a stream counts once, at its first frame (30 frames in 8.4 s were observed to
    pass, §3.7); True: every frame counts."""
    content_overflow: ContentOverflow = "truncate"
    """Stream content over 20480 bytes: shown cut on a character boundary, or refused 45002."""
    accept_stream_with_card: bool = False
    """stream_with_template_card in aibot_respond_msg (the doc says unsupported, the SDK sends
    it): False refuses it with 40008."""
    accept_msg_item: bool = False
    """stream.msg_item (the doc says unsupported): False accepts the frame and ignores the
    images; True checks and shows them."""
    chunk_index_base: ChunkBase = "either"
    """Upload chunk indexes: 0..N-1 or 1..N (either), or only one of them."""
    upload_session_s: float = 1800.0
    uploads_per_minute: int = 30
    uploads_per_hour: int = 1000
    response_url_base: str = "https://qyapi.weixin.qq.com"
    """Base of the response_url put into callbacks (an EmulatorServer's url to answer it)."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("_s"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{item.name} must be a number of seconds")
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{item.name} must be more than 0")
            elif item.type in ("int",):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{item.name} must be an integer of at least 1")
            elif item.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"{item.name} must be true or false")
        for name, kind in _CHOICES.items():
            if getattr(self, name) not in get_args(kind):
                raise ValueError(f"{name} must be one of {list(get_args(kind))}")
        if not isinstance(self.response_url_base, str) or not self.response_url_base:
            raise ValueError("response_url_base must be a URL")

    def changed(self, changes: Mapping[str, Any]) -> WsKnobs:
        """A copy with changes (knob name -> value); ValueError for unknown names."""
        unknown = set(changes) - KNOB_NAMES
        if unknown:
            raise ValueError(f"unknown knobs {sorted(unknown)}; known: {sorted(KNOB_NAMES)}")
        return replace(self, **dict(changes))

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return asdict(self)


_CHOICES: Mapping[str, Any] = {
    "stream_lifetime": StreamLifetime,
    "content_overflow": ContentOverflow,
    "chunk_index_base": ChunkBase,
    "evict_close": EvictClose,
}
KNOB_NAMES = frozenset(item.name for item in fields(WsKnobs))
