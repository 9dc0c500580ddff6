"""Inbound WeCom messages and events as typed, immutable values, parsed from XML or JSON plaintext.

Each class maps its attributes to WeCom's field names with `wx("FieldName")`. Anything not mapped
stays available in `.raw`, and an unknown MsgType or Event parses as `Message` / `Event`: never an
error. Fields are typed by their annotation (str, int, float); missing fields take the default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any, TypeVar, get_type_hints

from callback.errors import BadRequest
from callback.inbound import xmlcodec

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def wx(name: str, default: Any = "") -> Any:
    """Declare an attribute read from WeCom field `name`."""
    if isinstance(default, Mapping):
        return field(default_factory=lambda: _EMPTY, metadata={"wx": name})
    return field(default=default, metadata={"wx": name})


@dataclass(frozen=True, slots=True)
class Message:
    """Any callback. Subclasses add typed fields; `raw` keeps every field as received."""

    to_user: str = wx("ToUserName")
    from_user: str = wx("FromUserName")
    create_time: int = wx("CreateTime", 0)
    msg_type: str = wx("MsgType")
    agent_id: int | None = wx("AgentID", None)
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)
    #: The decrypted plaintext as received; the inbox keys events by its digest.
    plaintext: bytes = field(default=b"", repr=False, compare=False)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    @property
    def kind(self) -> str:
        """The event name for events, else the message type: what logs and metrics show."""
        return self.msg_type

    @property
    def dedup_key(self) -> str:
        """Identical across WeCom's retries of one callback, distinct between callbacks."""
        msg_id = self.raw.get("MsgId") or self.raw.get("msgid")  # an app's, or an AI bot's
        if msg_id not in (None, ""):
            return f"msg:{msg_id}"
        return "sha1:" + hashlib.sha1(self.plaintext).hexdigest()  # noqa: S324 - a key, not security


# -- messages (MsgType != event) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserMessage(Message):
    """A message a member sent to the application; carries a MsgId."""

    msg_id: str = wx("MsgId")


@dataclass(frozen=True, slots=True)
class TextMessage(UserMessage):
    content: str = wx("Content")


@dataclass(frozen=True, slots=True)
class ImageMessage(UserMessage):
    pic_url: str = wx("PicUrl")
    media_id: str = wx("MediaId")


@dataclass(frozen=True, slots=True)
class VoiceMessage(UserMessage):
    media_id: str = wx("MediaId")
    format: str = wx("Format")


@dataclass(frozen=True, slots=True)
class VideoMessage(UserMessage):
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


# -- events (MsgType == event) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event(Message):
    """Any event; `event` is its name as sent (lowercase, except LOCATION)."""

    event: str = wx("Event")
    event_key: str = wx("EventKey")

    @property
    def kind(self) -> str:
        return self.event


@dataclass(frozen=True, slots=True)
class LocationEvent(Event):
    latitude: float = wx("Latitude", 0.0)
    longitude: float = wx("Longitude", 0.0)
    precision: float = wx("Precision", 0.0)
    app_type: str = wx("AppType")


@dataclass(frozen=True, slots=True)
class ScanCodeEvent(Event):
    """scancode_push and scancode_waitmsg."""

    scan_type: str = wx("ScanCodeInfo.ScanType")
    scan_result: str = wx("ScanCodeInfo.ScanResult")


@dataclass(frozen=True, slots=True)
class PicEvent(Event):
    """pic_sysphoto, pic_photo_or_album and pic_weixin."""

    count: int = wx("SendPicsInfo.Count", 0)
    pic_md5_sums: tuple[str, ...] = wx("SendPicsInfo.PicList.item.PicMd5Sum", ())


@dataclass(frozen=True, slots=True)
class LocationSelectEvent(Event):
    latitude: float = wx("SendLocationInfo.Location_X", 0.0)
    longitude: float = wx("SendLocationInfo.Location_Y", 0.0)
    scale: int = wx("SendLocationInfo.Scale", 0)
    label: str = wx("SendLocationInfo.Label")
    poiname: str = wx("SendLocationInfo.Poiname")
    app_type: str = wx("AppType")


@dataclass(frozen=True, slots=True)
class SelectedItem:
    """One answered question of a template card: its key and the chosen option ids."""

    question_key: str
    option_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TemplateCardMenuEvent(Event):
    """A card's action_menu entry was chosen (also the base of card button events)."""

    task_id: str = wx("TaskId")
    card_type: str = wx("CardType")
    response_code: str = wx("ResponseCode")


@dataclass(frozen=True, slots=True)
class TemplateCardEvent(TemplateCardMenuEvent):
    """A card button was clicked or a selection submitted; `selected` maps question to options."""

    selected_items: tuple[SelectedItem, ...] = ()

    @property
    def selected(self) -> Mapping[str, tuple[str, ...]]:
        return {item.question_key: item.option_ids for item in self.selected_items}


@dataclass(frozen=True, slots=True)
class ChangeContactEvent(Event):
    """change_contact: a member, department or tag changed; see `change_type`."""

    change_type: str = wx("ChangeType")
    user_id: str = wx("UserID")
    new_user_id: str = wx("NewUserID")
    name: str = wx("Name")
    department: str = wx("Department")
    main_department: str = wx("MainDepartment")
    position: str = wx("Position")
    mobile: str = wx("Mobile")
    gender: str = wx("Gender")
    email: str = wx("Email")
    status: str = wx("Status")
    party_id: str = wx("Id")
    parent_id: str = wx("ParentId")
    tag_id: str = wx("TagId")
    add_user_items: str = wx("AddUserItems")
    del_user_items: str = wx("DelUserItems")
    add_party_items: str = wx("AddPartyItems")
    del_party_items: str = wx("DelPartyItems")


@dataclass(frozen=True, slots=True)
class BatchJobResultEvent(Event):
    job_id: str = wx("BatchJob.JobId")
    job_type: str = wx("BatchJob.JobType")
    err_code: int = wx("BatchJob.ErrCode", 0)
    err_msg: str = wx("BatchJob.ErrMsg")


@dataclass(frozen=True, slots=True)
class ApprovalChangeEvent(Event):
    """open_approval_change and sys_approval_change; the nested ApprovalInfo as a mapping."""

    approval_info: Mapping[str, Any] = wx("ApprovalInfo", _EMPTY)


@dataclass(frozen=True, slots=True)
class ExternalContactEvent(Event):
    """change_external_contact (add/edit/del..., see `change_type`)."""

    change_type: str = wx("ChangeType")
    user_id: str = wx("UserID")
    external_user_id: str = wx("ExternalUserID")
    state: str = wx("State")
    welcome_code: str = wx("WelcomeCode")
    source: str = wx("Source")
    fail_reason: str = wx("FailReason")


@dataclass(frozen=True, slots=True)
class ExternalChatEvent(Event):
    change_type: str = wx("ChangeType")
    chat_id: str = wx("ChatId")
    update_detail: str = wx("UpdateDetail")
    join_scene: int = wx("JoinScene", 0)
    quit_scene: int = wx("QuitScene", 0)
    mem_change_cnt: int = wx("MemChangeCnt", 0)


@dataclass(frozen=True, slots=True)
class ExternalTagEvent(Event):
    change_type: str = wx("ChangeType")
    tag_id: str = wx("Id")
    tag_type: str = wx("TagType")
    strategy_id: str = wx("StrategyId")


@dataclass(frozen=True, slots=True)
class LivingStatusEvent(Event):
    living_id: str = wx("LivingId")
    status: int = wx("Status", 0)


@dataclass(frozen=True, slots=True)
class KfMessageEvent(Event):
    """kf_msg_or_event: pass `token` to kf/sync_msg."""

    token: str = wx("Token")
    open_kf_id: str = wx("OpenKfId")


@dataclass(frozen=True, slots=True)
class CalendarEvent(Event):
    """add/modify/delete_calendar and add/modify/delete_schedule."""

    cal_id: str = wx("CalId")
    schedule_id: str = wx("ScheduleId")


@dataclass(frozen=True, slots=True)
class MeetingRoomEvent(Event):
    """book_meeting_room and cancel_meeting_room."""

    meeting_room_id: str = wx("MeetingRoomId")
    booking_id: str = wx("BookingId")


@dataclass(frozen=True, slots=True)
class InactiveAgentEvent(Event):
    """close_inactive_agent, reopen_inactive_agent and the activity alerts."""

    effect_time: int = wx("EffectTime", 0)


MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {
        "text": TextMessage,
        "image": ImageMessage,
        "voice": VoiceMessage,
        "video": VideoMessage,
        "location": LocationMessage,
        "link": LinkMessage,
    }
)

_EVENTS: dict[type[Event], tuple[str, ...]] = {
    LocationEvent: ("LOCATION",),
    ScanCodeEvent: ("scancode_push", "scancode_waitmsg"),
    PicEvent: ("pic_sysphoto", "pic_photo_or_album", "pic_weixin"),
    LocationSelectEvent: ("location_select",),
    TemplateCardEvent: ("template_card_event",),
    TemplateCardMenuEvent: ("template_card_menu_event",),
    ChangeContactEvent: ("change_contact",),
    BatchJobResultEvent: ("batch_job_result",),
    ApprovalChangeEvent: ("open_approval_change", "sys_approval_change"),
    ExternalContactEvent: ("change_external_contact",),
    ExternalChatEvent: ("change_external_chat",),
    ExternalTagEvent: ("change_external_tag",),
    LivingStatusEvent: ("living_status_change",),
    KfMessageEvent: ("kf_msg_or_event",),
    CalendarEvent: tuple(
        f"{verb}_{noun}"
        for verb in ("add", "modify", "delete")
        for noun in ("calendar", "schedule")
    ),
    MeetingRoomEvent: ("book_meeting_room", "cancel_meeting_room"),
    InactiveAgentEvent: (
        "close_inactive_agent",
        "reopen_inactive_agent",
        "inactive_alert",
        "low_active_alert",
        "low_active",
        "active_restored",
    ),
}
#: Event name (lowercased) -> class. Plain events (subscribe, click, view, ...) are `Event`.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {name.lower(): cls for cls, names in _EVENTS.items() for name in names}
)

# -- parsing -----------------------------------------------------------------------------------

M = TypeVar("M", bound=Message)


def _lookup(raw: Mapping[str, Any], path: str) -> Any:
    value: Any = raw
    for part in path.split("."):
        if isinstance(value, list):  # a repeated element: collect the field from each
            return [_lookup(item, part) for item in value if isinstance(item, dict)]
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _convert(value: Any, kind: Any, default: Any) -> Any:
    try:
        if kind in (int, "int", int | None) and value != "":
            return int(value)
        if kind in (float, "float"):
            return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON 1e400 is inf
        return default  # lenient on input: a malformed number keeps the raw text in .raw
    if kind in (str, "str"):
        return value if isinstance(value, str) else str(value)
    if isinstance(default, tuple):
        return tuple(str(v) for v in (value if isinstance(value, list) else [value]))
    if isinstance(default, Mapping):
        return MappingProxyType(value) if isinstance(value, dict) else default
    return value


@cache
def _plan(cls: type[Message]) -> tuple[tuple[str, str, Any, Any], ...]:
    hints = get_type_hints(cls)
    return tuple(
        (f.name, f.metadata["wx"], hints[f.name], _EMPTY if f.default is MISSING else f.default)
        for f in dataclasses.fields(cls)
        if "wx" in f.metadata
    )


def build(cls: type[M], raw: Mapping[str, Any], plaintext: bytes = b"") -> M:
    """Build `cls` from a flat field mapping (as parsed), keeping `raw` and `plaintext`."""
    values: dict[str, Any] = {}
    for name, path, kind, default in _plan(cls):  # type: ignore[arg-type]
        value = raw.get(path) if "." not in path else _lookup(raw, path)
        if value is not None:
            values[name] = _convert(value, kind, default)
    if cls is TemplateCardEvent:
        values["selected_items"] = _selected_items(raw.get("SelectedItems"))
    return cls(raw=MappingProxyType(dict(raw)), plaintext=plaintext, **values)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _selected_items(node: Any) -> tuple[SelectedItem, ...]:
    """SelectedItems{SelectedItem{QuestionKey, OptionIds{OptionId}}}; OpitonIds also accepted."""
    if not isinstance(node, Mapping):
        return ()
    items = []
    for item in _as_list(node.get("SelectedItem")):
        if not isinstance(item, Mapping):
            continue
        options = item.get("OptionIds") or item.get("OpitonIds") or {}
        ids = (
            options.get("OptionId") or options.get("OpitonId")
            if isinstance(options, dict)
            else options
        )
        items.append(
            SelectedItem(str(item.get("QuestionKey", "")), tuple(str(i) for i in _as_list(ids)))
        )
    return tuple(items)


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
    """Parse decrypted plaintext, XML (`<xml>...</xml>`) or JSON (`{...}`), into a typed value."""
    try:
        return _parse(plaintext)
    except RecursionError:  # hostile JSON nesting (xmlcodec caps XML depth itself)
        raise BadRequest("decrypted message is nested too deeply") from None


def _parse(plaintext: bytes) -> Message:
    head = plaintext.lstrip()[:1]
    if head == b"{":
        try:
            fields = json.loads(plaintext)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("decrypted message is not valid JSON") from None
        if not isinstance(fields, dict):
            raise BadRequest("decrypted JSON message is not an object")
    else:
        doc = xmlcodec.parse(plaintext)
        fields = next(iter(doc.values()), None)
        if not isinstance(fields, dict):
            raise BadRequest("decrypted XML message has no fields")
    return from_fields(fields, plaintext)
