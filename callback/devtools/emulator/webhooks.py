"""Group robots (群机器人 / 消息推送, wecom-protocol.md §6): webhook/send and upload_media.

A robot is registered by its key. Bodies are plain JSON with no access_token; each msgtype is
checked against the notes' limits; a robot takes 20 messages a minute (a sliding 60 s window)
and refuses the next with `rate_errcode` (45009 by default, UNCONFIRMED). Every call to a known
robot is recorded in order, refused ones too, with whether the group saw it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .cards import CARD_TYPE, check_card
from .errors import INVALID_PARAMETER, ApiError
from .fields import JsonObject, mapping, objects, string
from .media import MEDIA_LIFETIME

DEFAULT_WEBHOOK_KEY = "emulator-webhook-key"
"""The robot an Emulator knows unless told otherwise."""
UNKNOWN_KEY = 93000
"""Unknown or missing key: the emulator's choice ("invalid webhook url")."""
RATE_ERRCODE = 45009
"""Default errcode of the 21st message in a minute (UNCONFIRMED; 45009 = api freq out of limit)."""
PER_MINUTE = 20
WINDOW_S = 60.0
MAX_TEXT_BYTES = 2048
MAX_MARKDOWN_BYTES = 4096
MAX_IMAGE_BYTES = 2 << 20
MAX_ARTICLES = 8
MAX_FILE_BYTES = 20 << 20
MSGTYPES = frozenset({"text", "markdown", "image", "news", "file", "template_card"})
CARD_TYPES = frozenset({"text_notice", "news_notice"})
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
"""PNG and JPG file signatures."""
MD5_RE = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class WebhookRobot:
    """A group robot: its key (the secret in its URL) and a name for humans."""

    key: str
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {"key": self.key, "name": self.name}


@dataclass(frozen=True)
class WebhookRecord:
    """One webhook/send call to a known robot: what was asked, the answer, whether shown."""

    key: str
    msgtype: str | None
    body: Mapping[str, Any] | None
    sent_at: float
    errcode: int
    shown: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "key": self.key,
            "msgtype": self.msgtype,
            "body": None if self.body is None else dict(self.body),
            "sent_at": self.sent_at,
            "errcode": self.errcode,
            "shown": self.shown,
            "note": self.note,
        }


@dataclass(frozen=True)
class WebhookMedia:
    """A file uploaded through webhook/upload_media; usable by its robot for 3 days."""

    media_id: str
    key: str
    media_type: str
    filename: str
    size: int
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """The upload answer's fields (created_at as a string of unix seconds)."""
        return {
            "type": self.media_type,
            "media_id": self.media_id,
            "created_at": str(int(self.created_at)),
        }


@dataclass(frozen=True)
class WebhookPolicy:
    """The knobs: messages a robot takes per 60 s and the errcode of the one over."""

    per_minute: int = PER_MINUTE
    rate_errcode: int = RATE_ERRCODE

    def __post_init__(self) -> None:
        if isinstance(self.per_minute, bool) or not isinstance(self.per_minute, int):
            raise ValueError("per_minute must be an integer")
        if self.per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        code = self.rate_errcode
        if isinstance(code, bool) or not isinstance(code, int) or code == 0:
            raise ValueError("rate_errcode must be a non-zero integer")


class WebhookRobots:
    """Robots, their media, records and rate windows (not thread-safe: the Emulator locks)."""

    def __init__(self, keys: tuple[str, ...], policy: WebhookPolicy) -> None:
        self.policy = policy
        self.robots: dict[str, WebhookRobot] = {}
        self.records: list[WebhookRecord] = []
        self.media: dict[str, WebhookMedia] = {}
        self._shown_at: dict[str, list[float]] = {}
        for key in keys:
            self.add(WebhookRobot(key))

    def add(self, robot: WebhookRobot) -> WebhookRobot:
        """Register a robot; ValueError for an empty or taken key."""
        if not isinstance(robot.key, str) or not robot.key:
            raise ValueError("a webhook key is a non-empty string")
        if robot.key in self.robots:
            raise ValueError("that webhook key is already registered")
        self.robots[robot.key] = robot
        return robot

    def robot(self, key: str | None) -> WebhookRobot:
        """The robot of key; ApiError 93000 when unknown."""
        robot = self.robots.get(key or "")
        if robot is None:
            raise ApiError(UNKNOWN_KEY, "no group robot has this key")
        return robot

    def send(self, key: str | None, body: Mapping[str, Any] | ApiError, now: float) -> None:
        """Check and show one message, or raise ApiError; recorded either way (known key)."""
        robot = self.robot(key)
        msgtype = body.get("msgtype") if isinstance(body, Mapping) else None
        try:
            if isinstance(body, ApiError):
                raise body
            self._check(robot.key, body, now)
            window = [t for t in self._shown_at.get(robot.key, []) if t > now - WINDOW_S]
            if len(window) >= self.policy.per_minute:
                detail = f"more than {self.policy.per_minute} messages in 60 s"
                raise ApiError(self.policy.rate_errcode, detail)
        except ApiError as error:
            self._record(robot.key, msgtype, body, now, error.errcode, error.detail)
            raise
        self._shown_at[robot.key] = [*window, now]
        self._record(robot.key, msgtype, body, now, 0, "shown", shown=True)

    def upload(
        self, key: str | None, media_type: str | None, filename: str, data: bytes | None, now: float
    ) -> WebhookMedia:
        """Store an uploaded file; 93000, 40004 (type), 41005 (no file), 40006 (size)."""
        robot = self.robot(key)
        if media_type != "file":
            raise ApiError(40004, "type must be file")
        if data is None:
            raise ApiError(41005, "the multipart field 'media' (with a filename) is missing")
        if not data:
            raise ApiError(40006, "the media file is empty")
        if len(data) > MAX_FILE_BYTES:
            raise ApiError(40006, f"the file is larger than {MAX_FILE_BYTES} bytes")
        media = WebhookMedia(
            "3" + secrets.token_urlsafe(48), robot.key, media_type, filename, len(data), now
        )
        self.media[media.media_id] = media
        return media

    def set_policy(self, *, per_minute: int | None, rate_errcode: int | None) -> None:
        """Change the knobs given (None keeps one)."""
        policy = self.policy
        if per_minute is not None:
            policy = replace(policy, per_minute=per_minute)
        if rate_errcode is not None:
            policy = replace(policy, rate_errcode=rate_errcode)
        self.policy = policy

    def _record(
        self,
        key: str,
        msgtype: object,
        body: Mapping[str, Any] | ApiError,
        now: float,
        errcode: int,
        note: str,
        *,
        shown: bool = False,
    ) -> None:
        self.records.append(
            WebhookRecord(
                key=key,
                msgtype=msgtype if isinstance(msgtype, str) else None,
                body=None if isinstance(body, ApiError) else body,
                sent_at=now,
                errcode=errcode,
                shown=shown,
                note=note,
            )
        )

    def _check(self, key: str, body: JsonObject, now: float) -> None:
        msgtype = body.get("msgtype")
        if not isinstance(msgtype, str) or msgtype not in MSGTYPES:
            raise ApiError(40008, f"msgtype {msgtype!r} is not a group robot message type")
        payload = mapping(body, msgtype, required=INVALID_PARAMETER) or {}
        if msgtype == "text":
            string(payload, "content", where="text", required=44004, max_bytes=MAX_TEXT_BYTES)
            for name in ("mentioned_list", "mentioned_mobile_list"):
                _strings(payload, name)
        elif msgtype == "markdown":
            string(
                payload, "content", where="markdown", required=44004, max_bytes=MAX_MARKDOWN_BYTES
            )
        elif msgtype == "image":
            _image(payload)
        elif msgtype == "news":
            _news(payload)
        elif msgtype == "file":
            media_id = string(payload, "media_id", where="file", required=40007)
            media = self.media.get(media_id)
            if media is None or media.key != key or now >= media.created_at + MEDIA_LIFETIME:
                raise ApiError(40007, "file.media_id is not a live upload of this robot")
        else:
            card_type = payload.get("card_type")
            if card_type not in CARD_TYPES:
                raise ApiError(CARD_TYPE, "a robot's template_card is text_notice or news_notice")
            check_card(payload)


def _strings(payload: JsonObject, name: str) -> None:
    value = payload.get(name)
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(item, str) for item in value)
    ):
        raise ApiError(INVALID_PARAMETER, f"text.{name} must be a list of strings")


def _image(payload: JsonObject) -> None:
    encoded = string(payload, "base64", where="image", required=INVALID_PARAMETER)
    md5 = string(payload, "md5", where="image", required=INVALID_PARAMETER)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(INVALID_PARAMETER, "image.base64 is not base64") from None
    if not data:
        raise ApiError(40006, "image.base64 is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(40006, f"the image is larger than {MAX_IMAGE_BYTES} bytes")
    if not data.startswith(IMAGE_MAGIC):
        raise ApiError(40004, "the image is not a JPG or PNG")
    if not MD5_RE.fullmatch(md5):
        raise ApiError(INVALID_PARAMETER, "image.md5 must be 32 hex digits")
    if hashlib.md5(data).hexdigest() != md5.lower():  # noqa: S324 - the protocol's checksum
        raise ApiError(INVALID_PARAMETER, "image.md5 is not the md5 of the decoded image")


def _news(payload: JsonObject) -> None:
    articles = objects(
        payload, "articles", where="news", min_items=1, max_items=MAX_ARTICLES, too_many=45008
    )
    for index, article in enumerate(articles):
        where = f"news.articles[{index}]"
        string(article, "title", where=where, required=41016, max_bytes=128)
        string(article, "description", where=where, max_bytes=512)
        url = string(article, "url", where=where, required=INVALID_PARAMETER, max_bytes=2048)
        if not url.startswith(("http://", "https://")):
            raise ApiError(INVALID_PARAMETER, f"{where}.url must start with http:// or https://")
        string(article, "picurl", where=where, max_bytes=2048)
