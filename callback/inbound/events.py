"""Inbound events (MsgType `event`) as typed, immutable values; `EVENT_TYPES` maps each name to its
class. Fields are declared with `wx()` (see `callback.inbound.base`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from callback.inbound.base import _EMPTY, Event, wx


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
    """One answered question of a template card: its key and the chosen option ids, in order
    (`OptionIds`/`OptionId`, or the `OpitonIds`/`OpitonId` spelling of SKIT's copy)."""

    question_key: str = wx("QuestionKey")
    option_ids: tuple[str, ...] = wx("OptionIds.OptionId", (), "OpitonIds.OpitonId")


@dataclass(frozen=True, slots=True)
class TemplateCardMenuEvent(Event):
    """A card's action_menu entry was chosen (also the base of card button events)."""

    task_id: str = wx("TaskId")
    card_type: str = wx("CardType")
    response_code: str = wx("ResponseCode")


@dataclass(frozen=True, slots=True)
class TemplateCardEvent(TemplateCardMenuEvent):
    """A card button was clicked or a selection submitted; `selected` maps question to options."""

    selected_items: tuple[SelectedItem, ...] = wx("SelectedItems.SelectedItem", ())

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
