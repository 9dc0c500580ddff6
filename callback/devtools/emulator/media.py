"""Temporary media from media/upload: type and size checks, media_ids valid for three days."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

MEDIA_LIFETIME = 3 * 24 * 3600
MAX_SIZES = {"image": 10 << 20, "voice": 2 << 20, "video": 10 << 20, "file": 20 << 20}
"""Largest upload per type in bytes (the emulator's choice; the notes don't give sizes)."""


@dataclass(frozen=True)
class MediaRecord:
    """One uploaded temporary media file."""

    media_id: str
    corp_id: str
    media_type: str
    filename: str
    size: int
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """The media/upload answer fields (created_at as a string of unix seconds)."""
        return {
            "type": self.media_type,
            "media_id": self.media_id,
            "created_at": str(int(self.created_at)),
        }


class MediaStore:
    """Uploaded media of all corps; locked by the Emulator that owns it."""

    def __init__(self) -> None:
        self._media: dict[str, MediaRecord] = {}

    def upload(
        self, corp_id: str, media_type: str | None, filename: str, data: bytes | None, now: float
    ) -> MediaRecord:
        """Store an upload; raises 40004 (bad type), 41005 (no file) or 40006 (empty, too big)."""
        if media_type not in MAX_SIZES:
            raise ApiError(40004, f"type must be one of {sorted(MAX_SIZES)}")
        if data is None:
            raise ApiError(41005, "the multipart field 'media' (with a filename) is missing")
        if not data:
            raise ApiError(40006, "the media file is empty")
        if len(data) > MAX_SIZES[media_type]:
            raise ApiError(40006, f"{media_type} is larger than {MAX_SIZES[media_type]} bytes")
        media_id = "3" + secrets.token_urlsafe(48)
        record = MediaRecord(media_id, corp_id, media_type, filename, len(data), now)
        self._media[media_id] = record
        return record

    def is_live(self, media_id: str, corp_id: str, now: float) -> bool:
        """Whether media_id was uploaded by this corp less than three days ago."""
        record = self._media.get(media_id)
        return (
            record is not None
            and record.corp_id == corp_id
            and now < record.created_at + MEDIA_LIFETIME
        )

    def __len__(self) -> int:
        return len(self._media)
