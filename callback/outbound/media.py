"""The media messages (image, voice, video, file), each sent by a media_id from media/upload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from callback.outbound.checks import identifier, text
from callback.outbound.messages import Message


@dataclass(frozen=True, slots=True)
class Image(Message):
    """An image by temporary media_id."""

    media_id: str
    msgtype: ClassVar[str] = "image"
    safe_levels: ClassVar[frozenset[int]] = frozenset({0, 1})

    def __post_init__(self) -> None:
        identifier("image.media_id", self.media_id)

    def payload(self) -> dict[str, Any]:
        return {"media_id": self.media_id}


@dataclass(frozen=True, slots=True)
class Voice(Message):
    """A voice message (AMR) by temporary media_id; voice takes no `safe`."""

    media_id: str
    msgtype: ClassVar[str] = "voice"

    def __post_init__(self) -> None:
        identifier("voice.media_id", self.media_id)

    def payload(self) -> dict[str, Any]:
        return {"media_id": self.media_id}


@dataclass(frozen=True, slots=True)
class Video(Message):
    """A video by media_id, with optional title (≤128 bytes) and description (≤512 bytes)."""

    media_id: str
    title: str = ""
    description: str = ""
    msgtype: ClassVar[str] = "video"
    safe_levels: ClassVar[frozenset[int]] = frozenset({0, 1})

    def __post_init__(self) -> None:
        identifier("video.media_id", self.media_id)
        text("video.title", self.title, max_bytes=128)
        text("video.description", self.description, max_bytes=512)

    def payload(self) -> dict[str, Any]:
        body = {"media_id": self.media_id, "title": self.title, "description": self.description}
        return {key: value for key, value in body.items() if value}


@dataclass(frozen=True, slots=True)
class File(Message):
    """A file by temporary media_id."""

    media_id: str
    msgtype: ClassVar[str] = "file"
    safe_levels: ClassVar[frozenset[int]] = frozenset({0, 1})

    def __post_init__(self) -> None:
        identifier("file.media_id", self.media_id)

    def payload(self) -> dict[str, Any]:
        return {"media_id": self.media_id}
