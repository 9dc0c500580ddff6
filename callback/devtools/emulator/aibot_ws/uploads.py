"""Temporary media uploads over the long connection (§3.10): init, chunk, finish.

A session belongs to the bot (so it survives a reconnect) and lasts upload_session_s (30 min)
from init by the Emulator's clock. Chunks are ≤ 512 KiB before base64, at most 100; a repeated
index is ignored; indexes may be 0..N-1 or 1..N (knob). finish checks that every chunk is there,
the total size and the md5, and returns a media_id valid 3 days.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import INVALID_PARAMETER, ApiError
from ..fields import JsonObject, string
from ..media import MEDIA_LIFETIME
from .bodies import MEDIA_TYPES
from .knobs import WsKnobs
from .records import WsMedia

MAX_CHUNK_BYTES = 512 << 10
MAX_CHUNKS = 100
RATE_LIMITED = 846607
MD5_RE = re.compile(r"[0-9a-fA-F]{32}")


@dataclass
class _Session:
    upload_id: str
    bot_id: str
    media_type: str
    filename: str
    total_size: int
    total_chunks: int
    md5: str | None
    created_at: float
    chunks: dict[int, bytes] = field(default_factory=dict)


def _count(body: JsonObject, key: str, *, low: int, high: int | None = None) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(INVALID_PARAMETER, f"{key} must be an integer")
    if value < low or (high is not None and value > high):
        limit = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ApiError(INVALID_PARAMETER, f"{key} must be {limit}")
    return value


class Uploads:
    """Upload sessions and uploaded media of every bot (locked by the hub)."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.media: dict[str, WsMedia] = {}
        self._inits: dict[str, list[float]] = {}

    def init(self, bot_id: str, body: JsonObject, now: float, knobs: WsKnobs) -> dict[str, Any]:
        """aibot_upload_media_init; the ack body {"upload_id"}."""
        media_type = body.get("type")
        if media_type not in MEDIA_TYPES:
            raise ApiError(40004, f"type must be one of {sorted(MEDIA_TYPES)}")
        filename = string(body, "filename", required=INVALID_PARAMETER)
        total_size = _count(body, "total_size", low=1)
        total_chunks = _count(body, "total_chunks", low=1, high=MAX_CHUNKS)
        if total_size > total_chunks * MAX_CHUNK_BYTES:
            raise ApiError(40006, "total_size does not fit in total_chunks chunks of 512 KiB")
        md5 = body.get("md5")
        if md5 is not None and (not isinstance(md5, str) or not MD5_RE.fullmatch(md5)):
            raise ApiError(INVALID_PARAMETER, "md5 must be 32 hex digits")
        inits = [t for t in self._inits.get(bot_id, []) if t > now - 3600]
        if len(inits) >= knobs.uploads_per_hour or (
            sum(t > now - 60 for t in inits) >= knobs.uploads_per_minute
        ):
            raise ApiError(RATE_LIMITED, "too many uploads for this bot (30/min, 1000/h)")
        self._inits[bot_id] = [*inits, now]
        session = _Session(
            "up_" + secrets.token_urlsafe(18),
            bot_id,
            str(media_type),
            filename,
            total_size,
            total_chunks,
            None if md5 is None else md5.lower(),
            now,
        )
        self.sessions[session.upload_id] = session
        return {"upload_id": session.upload_id}

    def _session(self, bot_id: str, body: JsonObject, now: float, knobs: WsKnobs) -> _Session:
        upload_id = body.get("upload_id")
        session = self.sessions.get(upload_id) if isinstance(upload_id, str) else None
        if session is None or session.bot_id != bot_id:
            raise ApiError(INVALID_PARAMETER, "upload_id is unknown")
        if now >= session.created_at + knobs.upload_session_s:
            del self.sessions[session.upload_id]
            raise ApiError(INVALID_PARAMETER, "the upload session has expired (30 min)")
        return session

    def chunk(self, bot_id: str, body: JsonObject, now: float, knobs: WsKnobs) -> None:
        """aibot_upload_media_chunk: store the chunk (a repeated index is ignored)."""
        session = self._session(bot_id, body, now, knobs)
        count = session.total_chunks
        low = 1 if knobs.chunk_index_base == "one" else 0
        high = count - 1 if knobs.chunk_index_base == "zero" else count
        index = _count(body, "chunk_index", low=low, high=high)
        if (index == count and 0 in session.chunks) or (index == 0 and count in session.chunks):
            raise ApiError(INVALID_PARAMETER, "chunk_index mixes 0-based and 1-based indexes")
        encoded = string(body, "base64_data", required=INVALID_PARAMETER)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(INVALID_PARAMETER, "base64_data is not base64") from None
        if len(data) > MAX_CHUNK_BYTES:
            raise ApiError(40006, f"a chunk is {len(data)} bytes, at most {MAX_CHUNK_BYTES}")
        session.chunks.setdefault(index, data)

    def finish(self, bot_id: str, body: JsonObject, now: float, knobs: WsKnobs) -> WsMedia:
        """aibot_upload_media_finish: assemble, check size and md5, store the media."""
        session = self._session(bot_id, body, now, knobs)
        count = session.total_chunks
        indexes = set(session.chunks)
        if indexes not in ({*range(count)}, {*range(1, count + 1)}):
            missing = count - len(indexes)
            raise ApiError(INVALID_PARAMETER, f"{missing} of {count} chunks are missing")
        data = b"".join(session.chunks[i] for i in sorted(indexes))
        if len(data) != session.total_size:
            raise ApiError(40006, f"got {len(data)} bytes, total_size said {session.total_size}")
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - the protocol's checksum
        if session.md5 is not None and md5 != session.md5:
            raise ApiError(INVALID_PARAMETER, "md5 does not match the uploaded bytes")
        del self.sessions[session.upload_id]
        media = WsMedia(
            "3" + secrets.token_urlsafe(48),
            bot_id,
            session.media_type,
            session.filename,
            md5,
            data,
            now,
        )
        self.media[media.media_id] = media
        return media

    def is_live(self, media_id: str, bot_id: str, now: float) -> bool:
        """Whether media_id was uploaded by this bot less than 3 days ago."""
        media = self.media.get(media_id)
        return (
            media is not None
            and media.bot_id == bot_id
            and now < media.created_at + (MEDIA_LIFETIME)
        )


def finish_body(media: WsMedia) -> Mapping[str, Any]:
    """The finish ack's body: type, media_id, created_at (a string, as in the doc)."""
    return {
        "type": media.media_type,
        "media_id": media.media_id,
        "created_at": str(int(media.created_at)),
    }
