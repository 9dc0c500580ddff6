"""Files, pictures, voice and video from an AI bot over the long connection.

A handler answers with a `FileReply` (the bytes, a file name, the kind). Over the connection
the bytes go up as WeCom's temporary media first (`aibot_upload_media_init`, then chunks of
at most 512 KiB, at most 100 of them, 0-based as the official SDK sends them, each tried up to
3 times, then `_finish`, which gives a media_id valid 3 days), and the answer is a frame
`{"msgtype": kind, kind: {"media_id": ...}}`. WeCom allows a bot 30 uploads a minute and 1000
an hour; the windows are kept in the state store, shared by every process.

WeCom documents no size limit per kind; the official plugin's (image and video 10 MB, voice
2 MB and AMR only, file 20 MB) are checked here, before anything is sent.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callback.bots.link import AckError, Link
from callback.errors import RateLimited, ValidationError
from callback.inbound.replies import Reply

log = logging.getLogger("wecom.bots.uploads")

CHUNK_BYTES = 512 * 1024
CHUNKS_MAX = 100
CHUNK_TRIES = 3
UPLOAD_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 30), (3600.0, 1000))
SIZE_LIMITS = {
    "image": 10 * 1024 * 1024,
    "video": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "file": 20 * 1024 * 1024,
}
TITLE_LIMIT_BYTES = 128
DESCRIPTION_LIMIT_BYTES = 512
_AMR_MAGIC = b"#!AMR\n"
_PNG_MAGIC = b"\x89PNG"


def _too_long(where: str, text: str, limit: int) -> None:
    size = len(text.encode())
    if size > limit:
        raise ValidationError(
            f"{where}: {size} bytes, at most {limit}",
            field=where, value=text, limit=f"at most {limit} bytes",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class FileReply(Reply):
    """A file, picture, voice (AMR) or video an AI bot answers with (connection mode; a
    picture also goes under a stream in callback mode). `title` and `description` are
    for a video only."""

    data: bytes
    filename: str
    kind: str = "file"
    title: str = ""
    description: str = ""
    msg_type = "file"

    def __post_init__(self) -> None:
        limit = SIZE_LIMITS.get(self.kind)
        if limit is None:
            raise ValidationError(
                f"msgtype: {self.kind!r} is not one of {', '.join(SIZE_LIMITS)}",
                field="msgtype", value=self.kind, limit=" | ".join(SIZE_LIMITS),
            )  # fmt: skip
        if not self.data or len(self.data) > limit:
            raise ValidationError(
                f"{self.kind}: {len(self.data)} bytes, 1 to {limit // 2**20} MB",
                field=self.kind, value=len(self.data), limit=f"1 byte to {limit // 2**20} MB",
            )  # fmt: skip
        if not self.filename.strip():
            raise ValidationError(
                "filename: empty", field="filename", value=self.filename, limit="a file name"
            )
        if self.kind == "voice" and not self.data.startswith(_AMR_MAGIC):
            raise ValidationError(
                "voice: not AMR (WeCom plays voice in AMR only)",
                field="voice", value=self.data[:8], limit="AMR",
            )  # fmt: skip
        if self.kind != "video" and (self.title or self.description):
            raise ValidationError(
                f"{self.kind}: title and description are for a video",
                field=f"{self.kind}.title", value=self.title, limit="video only",
            )  # fmt: skip
        _too_long("video.title", self.title, TITLE_LIMIT_BYTES)
        _too_long("video.description", self.description, DESCRIPTION_LIMIT_BYTES)

    def body(self) -> dict[str, Any]:
        return {"Content": self.filename}

    def chunks(self) -> list[bytes]:
        return [self.data[i : i + CHUNK_BYTES] for i in range(0, len(self.data), CHUNK_BYTES)]

    def frame_body(self, media_id: str) -> dict[str, Any]:
        """The reply (or push) once uploaded: the kind and its media_id."""
        media: dict[str, Any] = {"media_id": media_id}
        if self.title:
            media["title"] = self.title
        if self.description:
            media["description"] = self.description
        return {"msgtype": self.kind, self.kind: media}


def pictures(images: tuple[bytes, ...]) -> list[FileReply]:
    """A stream's pictures (JPG or PNG bytes) as image replies, named by their format."""
    names = [f"picture-{n + 1}.{'png' if r.startswith(_PNG_MAGIC) else 'jpg'}" for n, r in
             enumerate(images)]  # fmt: skip
    return [FileReply(raw, name, kind="image") for raw, name in zip(images, names, strict=True)]


def upload(link: Link, reply: FileReply, reserve: Callable[[], float]) -> str:
    """Upload `reply`'s bytes over `link`; its media_id. `reserve()` books one upload in the
    bot's windows (0 when booked, else the seconds to wait: RateLimited upstream)."""
    chunks = reply.chunks()
    if len(chunks) > CHUNKS_MAX:  # cannot happen within SIZE_LIMITS; kept as the rule
        raise ValidationError(
            f"{reply.kind}: {len(chunks)} chunks of 512 KiB, at most {CHUNKS_MAX}",
            field=reply.kind, value=len(reply.data), limit="at most 100 chunks of 512 KiB",
        )  # fmt: skip
    wait = reserve()
    if wait > 0:
        raise RateLimited(
            "the bot's upload window (30 a minute, 1000 an hour) is full", retry_after=wait
        )
    init = link.request(
        "aibot_upload_media_init",
        {
            "type": reply.kind,
            "filename": reply.filename,
            "total_size": len(reply.data),
            "total_chunks": len(chunks),
            "md5": hashlib.md5(reply.data).hexdigest(),  # noqa: S324 - WeCom's checksum
        },
    )
    upload_id = str((init.get("body") or {}).get("upload_id", ""))
    if not upload_id:
        raise AckError(-1, "no upload_id in the answer to aibot_upload_media_init", "upload")
    for index, chunk in enumerate(chunks):
        body = {"upload_id": upload_id, "chunk_index": index,
                "base64_data": base64.b64encode(chunk).decode()}  # fmt: skip
        for attempt in range(CHUNK_TRIES):
            try:
                link.request("aibot_upload_media_chunk", body)
                break
            except (AckError, TimeoutError) as exc:  # a repeated chunk is ignored by WeCom
                if attempt == CHUNK_TRIES - 1:
                    raise
                log.info("upload %s: chunk %d again (%s)", upload_id, index, exc)
    done = link.request("aibot_upload_media_finish", {"upload_id": upload_id})
    media_id = str((done.get("body") or {}).get("media_id", ""))
    if not media_id:
        raise AckError(-1, "no media_id in the answer to aibot_upload_media_finish", "upload")
    return media_id
