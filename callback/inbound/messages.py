"""Inbound WeCom messages and events as typed, immutable values, parsed from XML or JSON plaintext.

Each class maps its attributes to WeCom's field names with `wx("FieldName")`. Anything not mapped
stays available in `.raw`, and an unknown MsgType or Event parses as `Message` / `Event`: never an
error. Fields are typed by their annotation (str, int, float, a tuple of texts or of items, a
mapping; see `base.read`); missing fields take the default.

The classes live by noun: the bases (`Message`, `UserMessage`, `Event`), `wx` and the reading in
`base`, the event classes in `events`, the member messages here; this module re-exports them all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from callback.errors import BadRequest
from callback.inbound import xmlcodec
from callback.inbound.base import Event, Message, UserMessage, freeze, read, wx
from callback.inbound.events import (
    EVENT_TYPES,
    ApprovalChangeEvent,
    ApprovalItem,
    ApprovalNode,
    BatchJobResultEvent,
    CalendarEvent,
    ChangeAppAdminEvent,
    ChangeChainEvent,
    ChangeContactEvent,
    ChangeSchoolContactEvent,
    CustomerAcquisitionEvent,
    DocChangeEvent,
    EmailChangeEvent,
    ExtAttr,
    ExternalChatEvent,
    ExternalContactEvent,
    ExternalTagEvent,
    InactiveAgentEvent,
    KfAccountAuthChangeEvent,
    KfMessageEvent,
    LivingStatusEvent,
    LocationEvent,
    LocationSelectEvent,
    MeetingChangeEvent,
    MeetingRoomEvent,
    MeetingStatisticsEvent,
    MsgAuditNotifyEvent,
    NotifyNode,
    OpenApprovalChangeEvent,
    PicEvent,
    ProcessNode,
    ProcessSubNode,
    ProgramNotifyEvent,
    ScanCodeEvent,
    SecurityEvent,
    SelectedItem,
    ShareChangeEvent,
    SmartSheetChangeEvent,
    SpComment,
    SpDetail,
    SpRecord,
    SwitchWorkbenchModeEvent,
    SysApprovalChangeEvent,
    TaskCardClickEvent,
    TemplateCardEvent,
    TemplateCardMenuEvent,
    UnlicensedNotifyEvent,
    UploadMediaJobFinishEvent,
    VipAccountApprovalEvent,
    WedriveFileChangeEvent,
    WedriveInsufficientCapacityEvent,
    WedriveSpaceChangeEvent,
)

__all__ = [
    "EVENT_TYPES",
    "MESSAGE_TYPES",
    "ApprovalChangeEvent",
    "ApprovalItem",
    "ApprovalNode",
    "BatchJobResultEvent",
    "CalendarEvent",
    "ChangeAppAdminEvent",
    "ChangeChainEvent",
    "ChangeContactEvent",
    "ChangeSchoolContactEvent",
    "CustomerAcquisitionEvent",
    "DocChangeEvent",
    "EmailChangeEvent",
    "Event",
    "ExtAttr",
    "ExternalChatEvent",
    "ExternalContactEvent",
    "ExternalTagEvent",
    "ImageMessage",
    "InactiveAgentEvent",
    "KfAccountAuthChangeEvent",
    "KfMessageEvent",
    "LinkMessage",
    "LivingStatusEvent",
    "LocationEvent",
    "LocationMessage",
    "LocationSelectEvent",
    "MeetingChangeEvent",
    "MeetingRoomEvent",
    "MeetingStatisticsEvent",
    "Message",
    "MsgAuditNotifyEvent",
    "NotifyNode",
    "OpenApprovalChangeEvent",
    "PicEvent",
    "ProcessNode",
    "ProcessSubNode",
    "ProgramNotifyEvent",
    "ScanCodeEvent",
    "SecurityEvent",
    "SelectedItem",
    "ShareChangeEvent",
    "ShortVideoMessage",
    "SmartSheetChangeEvent",
    "SpComment",
    "SpDetail",
    "SpRecord",
    "SwitchWorkbenchModeEvent",
    "SysApprovalChangeEvent",
    "TaskCardClickEvent",
    "TemplateCardEvent",
    "TemplateCardMenuEvent",
    "TextMessage",
    "UnlicensedNotifyEvent",
    "UploadMediaJobFinishEvent",
    "UserMessage",
    "VideoMessage",
    "VipAccountApprovalEvent",
    "VoiceMessage",
    "WedriveFileChangeEvent",
    "WedriveInsufficientCapacityEvent",
    "WedriveSpaceChangeEvent",
    "build",
    "classify",
    "from_fields",
    "parse",
    "wx",
]

# -- member messages (MsgType != event); the bases and the events are in `base` and `events` ----


@dataclass(frozen=True, slots=True)
class TextMessage(UserMessage):
    content: str = wx("Content")


# media_id also reads a nested <Image>/<Voice>/<Video><MediaId> (the shape of go-wecom's samples)


@dataclass(frozen=True, slots=True)
class ImageMessage(UserMessage):
    pic_url: str = wx("PicUrl")
    media_id: str = wx("MediaId", "", "Image.MediaId")


@dataclass(frozen=True, slots=True)
class VoiceMessage(UserMessage):
    media_id: str = wx("MediaId", "", "Voice.MediaId")
    format: str = wx("Format")


@dataclass(frozen=True, slots=True)
class VideoMessage(UserMessage):
    media_id: str = wx("MediaId", "", "Video.MediaId")
    thumb_media_id: str = wx("ThumbMediaId")


@dataclass(frozen=True, slots=True)
class ShortVideoMessage(UserMessage):
    """shortvideo (a short video, the WeChat official-account type some clients also send)."""

    media_id: str = wx("MediaId")
    thumb_media_id: str = wx("ThumbMediaId")


@dataclass(frozen=True, slots=True)
class LocationMessage(UserMessage):
    latitude: float = wx("Location_X", 0.0)
    longitude: float = wx("Location_Y", 0.0)
    scale: int = wx("Scale", 0)
    label: str = wx("Label")
    app_type: str = wx("AppType")


@dataclass(frozen=True, slots=True)
class LinkMessage(UserMessage):
    title: str = wx("Title")
    description: str = wx("Description")
    url: str = wx("Url")
    pic_url: str = wx("PicUrl")


MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {
        "text": TextMessage,
        "image": ImageMessage,
        "voice": VoiceMessage,
        "video": VideoMessage,
        "shortvideo": ShortVideoMessage,
        "location": LocationMessage,
        "link": LinkMessage,
    }
)

# -- parsing -----------------------------------------------------------------------------------

M = TypeVar("M", bound=Message)


def build(cls: type[M], raw: Mapping[str, Any], plaintext: bytes = b"") -> M:
    """Build `cls` from a field mapping (as parsed), keeping `raw` (frozen) and `plaintext`."""
    raw = freeze(raw)
    return cls(raw=raw, plaintext=plaintext, **read(cls, raw))


def classify(raw: Mapping[str, Any]) -> type[Message]:
    """The class for a field mapping: by MsgType, then by Event name (case-insensitive)."""
    msg_type = raw.get("MsgType")
    if msg_type == "event":
        return EVENT_TYPES.get(str(raw.get("Event", "")).lower(), Event)
    return MESSAGE_TYPES.get(str(msg_type), Message)


def from_fields(raw: Mapping[str, Any], plaintext: bytes = b"") -> Message:
    """Type a flat field mapping (XML children or JSON object)."""
    return build(classify(raw), raw, plaintext)


def parse(plaintext: bytes) -> Message:
    """Parse decrypted plaintext, XML (`<xml>...</xml>`) or JSON (`{...}`), into a typed value;
    a leading byte order mark, indentation and spaces in end tags (`</xml >`) are accepted."""
    try:
        return _parse(plaintext)
    except RecursionError:  # hostile JSON nesting (xmlcodec caps XML depth itself)
        raise BadRequest("decrypted message is nested too deeply") from None


def _parse(plaintext: bytes) -> Message:
    body = plaintext.removeprefix(xmlcodec.BOM)  # leniently: json.loads refuses a BOM
    head = body.lstrip()[:1]
    if head == b"{":
        try:
            fields = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("decrypted message is not valid JSON") from None
        if not isinstance(fields, dict):
            raise BadRequest("decrypted JSON message is not an object")
    else:
        doc = xmlcodec.parse(body)
        fields = next(iter(doc.values()), None)
        if not isinstance(fields, dict):
            raise BadRequest("decrypted XML message has no fields")
    return from_fields(fields, plaintext)
