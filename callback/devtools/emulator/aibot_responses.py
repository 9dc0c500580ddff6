"""The AI bot's response_url (§2.9): codes issued in callbacks, and what each POST showed.

A response_url is plain JSON, no access_token, one call, valid 1 h from the callback (by the
emulator's clock); markdown anywhere, template_card only into a single chat, stream with
finish only behind the accept_stream knob (observed, UNCONFIRMED). Every POST is recorded,
refused ones too, with whether the member saw it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .errors import INVALID_PARAMETER, ApiError

RESPONSE_URL_LIFETIME = 3600.0
"""A response_url works for 1 h after the callback that carried it."""
MAX_CONTENT_BYTES = 20480
MAX_FEEDBACK_ID_BYTES = 256
MAX_MSG_ITEMS = 10
INVALID_RESPONSE_CODE = 60140
"""Unknown or expired response_code (the app API's code for an invalid response_code)."""
ALREADY_RESPONDED = 846606
"""The error-mode answer to a second call (the AI bot's 'request already responded')."""
INVALID_MESSAGE_TYPE = 40008
EMPTY_CONTENT = 44004
CONTENT_TOO_LONG = 45002
INVALID_CARD_TYPE = 42031
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
CHAT_TYPES = frozenset({"single", "group"})

SecondCall = Literal["silent"] | int
"""A second POST to a used response_url: "silent" (errcode 0, not shown) or an errcode."""


def check_second_call(value: object) -> SecondCall:
    """value if it is a SecondCall; ValueError otherwise."""
    if value == "silent":
        return "silent"
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        return value
    raise ValueError('second_call must be "silent" or a non-zero errcode')


@dataclass(frozen=True)
class AibotResponseCode:
    """A response_code put into a message or template_card_event callback."""

    code: str
    chattype: str
    msgid: str | None
    userid: str | None
    chatid: str | None
    issued_at: float
    used_at: float | None = None

    @property
    def expires_at(self) -> float:
        """When the response_url stops working."""
        return self.issued_at + RESPONSE_URL_LIFETIME

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "response_code": self.code,
            "chattype": self.chattype,
            "msgid": self.msgid,
            "userid": self.userid,
            "chatid": self.chatid,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "used_at": self.used_at,
        }


@dataclass(frozen=True)
class AibotResponseRecord:
    """One POST to a response_url: its body, the answer's errcode and whether it was shown."""

    response_code: str | None
    msgid: str | None
    chattype: str | None
    userid: str | None
    chatid: str | None
    msgtype: str | None
    body: Mapping[str, Any] | None
    posted_at: float
    errcode: int
    shown: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "response_code": self.response_code,
            "msgid": self.msgid,
            "chattype": self.chattype,
            "userid": self.userid,
            "chatid": self.chatid,
            "msgtype": self.msgtype,
            "body": None if self.body is None else dict(self.body),
            "posted_at": self.posted_at,
            "errcode": self.errcode,
            "shown": self.shown,
            "note": self.note,
        }


@dataclass(frozen=True)
class ResponsePolicy:
    """The knobs where the notes are unsure: second calls and stream bodies."""

    second_call: SecondCall = "silent"
    accept_stream: bool = False


class AibotResponses:
    """The issued response codes and the record of every POST (not thread-safe: lock outside)."""

    def __init__(self, policy: ResponsePolicy) -> None:
        self.policy = policy
        self.codes: dict[str, AibotResponseCode] = {}
        self.records: list[AibotResponseRecord] = []

    def register(
        self,
        code: str | None,
        *,
        chattype: str,
        msgid: str | None,
        userid: str | None,
        chatid: str | None,
        now: float,
    ) -> AibotResponseCode:
        """Issue a code (a fresh one when code is None) for a callback into chattype."""
        if chattype not in CHAT_TYPES:
            raise ValueError(f"chattype must be single or group, not {chattype!r}")
        code = code or secrets.token_urlsafe(24)
        if code in self.codes:
            raise ValueError(f"response_code {code!r} is already registered")
        entry = AibotResponseCode(code, chattype, msgid, userid, chatid, now)
        self.codes[code] = entry
        return entry

    def respond(
        self, code: str | None, body: Mapping[str, Any] | ApiError, now: float
    ) -> dict[str, Any]:
        """Handle one POST to a response_url; the answer, or ApiError (recorded either way)."""
        entry = self.codes.get(code or "")
        msgtype = body.get("msgtype") if isinstance(body, Mapping) else None
        try:
            if entry is None:
                raise ApiError(INVALID_RESPONSE_CODE, "response_code is unknown")
            if now >= entry.expires_at:
                raise ApiError(INVALID_RESPONSE_CODE, "the response_url is older than 1 h")
            if isinstance(body, ApiError):
                raise body
            _check_body(body, entry.chattype, self.policy.accept_stream)
            if entry.used_at is not None:
                if self.policy.second_call != "silent":
                    raise ApiError(self.policy.second_call, "the response_url was already used")
                self._record(entry, code, body, msgtype, now, 0, "second call: accepted, not shown")
                return {"errcode": 0, "errmsg": "ok"}
        except ApiError as error:
            self._record(entry, code, body, msgtype, now, error.errcode, error.detail)
            raise
        self.codes[entry.code] = replace(entry, used_at=now)
        self._record(entry, code, body, msgtype, now, 0, "shown", shown=True)
        return {"errcode": 0, "errmsg": "ok"}

    def _record(
        self,
        entry: AibotResponseCode | None,
        code: str | None,
        body: Mapping[str, Any] | ApiError,
        msgtype: object,
        now: float,
        errcode: int,
        note: str,
        *,
        shown: bool = False,
    ) -> None:
        self.records.append(
            AibotResponseRecord(
                response_code=code,
                msgid=None if entry is None else entry.msgid,
                chattype=None if entry is None else entry.chattype,
                userid=None if entry is None else entry.userid,
                chatid=None if entry is None else entry.chatid,
                msgtype=msgtype if isinstance(msgtype, str) else None,
                body=None if isinstance(body, ApiError) else body,
                posted_at=now,
                errcode=errcode,
                shown=shown,
                note=note,
            )
        )


def _check_body(body: Mapping[str, Any], chattype: str, accept_stream: bool) -> None:
    msgtype = body.get("msgtype")
    if msgtype == "markdown":
        part = _object(body, "markdown")
        _content(part, "markdown", required=True)
        _feedback(part, "markdown")
    elif msgtype == "template_card":
        if chattype != "single":
            raise ApiError(INVALID_MESSAGE_TYPE, "template_card only answers a single chat")
        card = body.get("template_card")
        if not isinstance(card, dict) or card.get("card_type") not in CARD_TYPES:
            raise ApiError(INVALID_CARD_TYPE, "template_card.card_type is missing or unknown")
        _feedback(card, "template_card")
    elif msgtype == "stream" and accept_stream:
        stream = _object(body, "stream")
        if stream.get("finish") is not True:
            raise ApiError(INVALID_PARAMETER, "a stream to the response_url must finish")
        if not isinstance(stream.get("id"), str):
            raise ApiError(INVALID_PARAMETER, "stream.id is required")
        _content(stream, "stream", required=False)
        items = stream.get("msg_item", [])
        if not isinstance(items, list) or len(items) > MAX_MSG_ITEMS:
            raise ApiError(INVALID_PARAMETER, "stream.msg_item is a list of at most 10 images")
        _feedback(stream, "stream")
    else:
        raise ApiError(INVALID_MESSAGE_TYPE, f"msgtype {msgtype!r} is not a response_url type")


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    part = body.get(key)
    if not isinstance(part, dict):
        raise ApiError(INVALID_PARAMETER, f"{key} must be an object")
    return part


def _content(part: Mapping[str, Any], where: str, *, required: bool) -> None:
    content = part.get("content", None if required else "")
    if content is None or content == "":
        if required:
            raise ApiError(EMPTY_CONTENT, f"{where}.content is empty")
        return
    if not isinstance(content, str):
        raise ApiError(INVALID_PARAMETER, f"{where}.content must be a string")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise ApiError(CONTENT_TOO_LONG, f"{where}.content is over {MAX_CONTENT_BYTES} bytes")


def _feedback(part: Mapping[str, Any], where: str) -> None:
    feedback = part.get("feedback")
    if feedback is None:
        return
    value = feedback.get("id") if isinstance(feedback, dict) else None
    if not isinstance(value, str) or len(value.encode()) > MAX_FEEDBACK_ID_BYTES:
        raise ApiError(INVALID_PARAMETER, f"{where}.feedback.id must be at most 256 bytes")
