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
class ExtAttr:
    """One custom field of a member (`ExtAttr.Item`): `attr_type` 0 is text, 1 a web link."""

    name: str = wx("Name")
    attr_type: int = wx("Type", 0)
    text: str = wx("Text.Value")
    web_title: str = wx("Web.Title")
    web_url: str = wx("Web.Url")


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
    is_leader_in_dept: str = wx("IsLeaderInDept")
    direct_leader: str = wx("DirectLeader")
    biz_mail: str = wx("BizMail")
    avatar: str = wx("Avatar")
    alias: str = wx("Alias")
    telephone: str = wx("Telephone")
    address: str = wx("Address")
    order: int = wx("Order", 0)
    ext_attrs: tuple[ExtAttr, ...] = wx("ExtAttr.Item", ())


@dataclass(frozen=True, slots=True)
class BatchJobResultEvent(Event):
    job_id: str = wx("BatchJob.JobId")
    job_type: str = wx("BatchJob.JobType")
    err_code: int = wx("BatchJob.ErrCode", 0)
    err_msg: str = wx("BatchJob.ErrMsg")


@dataclass(frozen=True, slots=True)
class ApprovalChangeEvent(Event):
    """The base of open_approval_change and sys_approval_change: ApprovalInfo as a mapping."""

    approval_info: Mapping[str, Any] = wx("ApprovalInfo", _EMPTY)


@dataclass(frozen=True, slots=True)
class ApprovalItem:
    """An approver of an approval-flow node (`Items.Item`); ItemUserid is read as ItemUserId."""

    name: str = wx("ItemName")
    user_id: str = wx("ItemUserId")
    party: str = wx("ItemParty")
    image: str = wx("ItemImage")
    status: int = wx("ItemStatus", 0)
    speech: str = wx("ItemSpeech")
    op_time: int = wx("ItemOpTime", 0)


@dataclass(frozen=True, slots=True)
class ApprovalNode:
    """One step of an approval flow (`ApprovalNodes.ApprovalNode`), with its approvers."""

    status: int = wx("NodeStatus", 0)
    attr: int = wx("NodeAttr", 0)
    node_type: int = wx("NodeType", 0)
    items: tuple[ApprovalItem, ...] = wx("Items.Item", ())


@dataclass(frozen=True, slots=True)
class NotifyNode:
    """A member notified of an approval (`NotifyNodes.NotifyNode`)."""

    name: str = wx("ItemName")
    user_id: str = wx("ItemUserId")
    party: str = wx("ItemParty")
    image: str = wx("ItemImage")


@dataclass(frozen=True, slots=True)
class OpenApprovalChangeEvent(ApprovalChangeEvent):
    """open_approval_change (the approval-flow engine): ApprovalInfo's fields, its steps in
    order and the members notified; `approver_step` reads ApproverStep or approverstep."""

    third_no: str = wx("ApprovalInfo.ThirdNo")
    open_sp_name: str = wx("ApprovalInfo.OpenSpName")
    open_template_id: str = wx("ApprovalInfo.OpenTemplateId")
    open_sp_status: int = wx("ApprovalInfo.OpenSpStatus", 0)
    apply_time: int = wx("ApprovalInfo.ApplyTime", 0)
    apply_user_name: str = wx("ApprovalInfo.ApplyUserName")
    apply_user_id: str = wx("ApprovalInfo.ApplyUserId")
    apply_user_party: str = wx("ApprovalInfo.ApplyUserParty")
    apply_user_image: str = wx("ApprovalInfo.ApplyUserImage")
    approval_nodes: tuple[ApprovalNode, ...] = wx("ApprovalInfo.ApprovalNodes.ApprovalNode", ())
    notify_nodes: tuple[NotifyNode, ...] = wx("ApprovalInfo.NotifyNodes.NotifyNode", ())
    approver_step: int = wx("ApprovalInfo.ApproverStep", 0)


@dataclass(frozen=True, slots=True)
class SpDetail:
    """One approver's part in an approval record (`SpRecord.Details`)."""

    user_id: str = wx("Approver.UserId")
    speech: str = wx("Speech")
    sp_status: int = wx("SpStatus", 0)
    sp_time: int = wx("SpTime", 0)
    media_ids: tuple[str, ...] = wx("MediaId", ())


@dataclass(frozen=True, slots=True)
class SpRecord:
    """One step of a system approval (`SpRecord`), with each approver's detail."""

    sp_status: int = wx("SpStatus", 0)
    approver_attr: int = wx("ApproverAttr", 0)
    details: tuple[SpDetail, ...] = wx("Details", ())


@dataclass(frozen=True, slots=True)
class SpComment:
    """A comment on a system approval (`Comments`); `attach`: the attachments' media ids."""

    user_id: str = wx("CommentUserInfo.UserId")
    time: int = wx("CommentTime", 0)
    content: str = wx("CommentContent")
    comment_id: str = wx("CommentId")
    attach: tuple[str, ...] = wx("Attach", ())


@dataclass(frozen=True, slots=True)
class ProcessSubNode:
    """One approver of a process node (`ProcessList.NodeList.SubNodeList`)."""

    user_id: str = wx("UserInfo.UserId")
    speech: str = wx("Speech")
    sp_yj: int = wx("SpYj", 0)
    sp_time: int = wx("Sptime", 0)
    media_ids: tuple[str, ...] = wx("MediaIds", ())


@dataclass(frozen=True, slots=True)
class ProcessNode:
    """One node of a system approval's process (`ProcessList.NodeList`)."""

    node_type: int = wx("NodeType", 0)
    sp_status: int = wx("SpStatus", 0)
    apv_rel: int = wx("ApvRel", 0)
    sub_nodes: tuple[ProcessSubNode, ...] = wx("SubNodeList", ())


@dataclass(frozen=True, slots=True)
class SysApprovalChangeEvent(ApprovalChangeEvent):
    """sys_approval_change (the system approval app): ApprovalInfo's fields, its records, comments
    and process nodes in order. `sp_no` is text: approval numbers outgrow 32 bits."""

    sp_no: str = wx("ApprovalInfo.SpNo")
    sp_name: str = wx("ApprovalInfo.SpName")
    sp_status: int = wx("ApprovalInfo.SpStatus", 0)
    template_id: str = wx("ApprovalInfo.TemplateId")
    apply_time: int = wx("ApprovalInfo.ApplyTime", 0)
    applyer_user_id: str = wx("ApprovalInfo.Applyer.UserId")
    applyer_party: str = wx("ApprovalInfo.Applyer.Party")
    sp_records: tuple[SpRecord, ...] = wx("ApprovalInfo.SpRecord", ())
    notifyer_user_ids: tuple[str, ...] = wx("ApprovalInfo.Notifyer.UserId", ())
    comments: tuple[SpComment, ...] = wx("ApprovalInfo.Comments", ())
    process_nodes: tuple[ProcessNode, ...] = wx("ApprovalInfo.ProcessList.NodeList", ())
    statu_change_event: int = wx("ApprovalInfo.StatuChangeEvent", 0)


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
    last_mem_ver: str = wx("LastMemVer")
    cur_mem_ver: str = wx("CurMemVer")


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
    """book_meeting_room and cancel_meeting_room. The booking's id comes as BookingId or, in
    the official samples, as MeetingId: `booking_id` (and its alias `meeting_id`) reads either."""

    meeting_room_id: str = wx("MeetingRoomId")
    booking_id: str = wx("BookingId", "", "MeetingId")

    @property
    def meeting_id(self) -> str:
        return self.booking_id


@dataclass(frozen=True, slots=True)
class InactiveAgentEvent(Event):
    """close_inactive_agent, reopen_inactive_agent and the activity alerts."""

    effect_time: int = wx("EffectTime", 0)


# -- events seen in other projects' samples (see docs/handlers.md) -----------------------------


@dataclass(frozen=True, slots=True)
class TaskCardClickEvent(Event):
    """taskcard_click: a button of a (legacy) task card; `event_key` is the button's key.
    `@router.card_action` matches it too. It has no ResponseCode, so it cannot update a card."""

    task_id: str = wx("TaskId")


@dataclass(frozen=True, slots=True)
class ChangeSchoolContactEvent(Event):
    """change_school_contact: a student, parent or class changed (`change_type`, for example
    create_student, update_parent, delete_deparmtment, spelled so); `target_id` is the
    student's or parent's id, or the department's."""

    change_type: str = wx("ChangeType")
    target_id: str = wx("Id")


@dataclass(frozen=True, slots=True)
class CustomerAcquisitionEvent(Event):
    """customer_acquisition (获客助手): a link's quota or state (balance_low, link_unavailable,
    delete_link...), a customer's friend request, first chat or message (`change_type`)."""

    change_type: str = wx("ChangeType")
    link_id: str = wx("LinkId")
    user_id: str = wx("UserID")
    external_user_id: str = wx("ExternalUserID")
    state: str = wx("State")
    chat_key: str = wx("ChatKey")


@dataclass(frozen=True, slots=True)
class KfAccountAuthChangeEvent(Event):
    """kf_account_auth_change: customer-service accounts this app may now use, or no longer."""

    auth_add_open_kf_ids: tuple[str, ...] = wx("AuthAddOpenKfId", ())
    auth_del_open_kf_ids: tuple[str, ...] = wx("AuthDelOpenKfId", ())


@dataclass(frozen=True, slots=True)
class WedriveFileChangeEvent(Event):
    """wedrive_file_change: files of the drive changed (`change_type`, for example move_file)."""

    change_type: str = wx("ChangeType")
    file_ids: tuple[str, ...] = wx("FileId", ())


@dataclass(frozen=True, slots=True)
class WedriveSpaceChangeEvent(Event):
    """wedrive_space_change: drive spaces changed (`change_type`, for example dismiss_space)."""

    change_type: str = wx("ChangeType")
    space_ids: tuple[str, ...] = wx("SpaceId", ())


@dataclass(frozen=True, slots=True)
class WedriveInsufficientCapacityEvent(Event):
    """wedrive_insufficient_capacity: the corp's drive is almost full (no other field)."""


@dataclass(frozen=True, slots=True)
class DocChangeEvent(Event):
    """doc_change: documents or forms changed (`change_type`, for example doc_member_change)."""

    change_type: str = wx("ChangeType")
    doc_ids: tuple[str, ...] = wx("DocId", ())
    form_ids: tuple[str, ...] = wx("FormId", ())


@dataclass(frozen=True, slots=True)
class SmartSheetChangeEvent(Event):
    """smart_sheet_change: fields or records of a smart sheet changed."""

    change_type: str = wx("ChangeType")
    doc_id: str = wx("DocId")
    sheet_id: str = wx("SheetId")
    field_ids: tuple[str, ...] = wx("FieldId", ())
    record_ids: tuple[str, ...] = wx("RecordId", ())


@dataclass(frozen=True, slots=True)
class MeetingChangeEvent(Event):
    """meeting_change: a meeting was created, changed or cancelled (`change_type`)."""

    change_type: str = wx("ChangeType")
    meeting_id: str = wx("MeetingId")


@dataclass(frozen=True, slots=True)
class MeetingStatisticsEvent(Event):
    """meeting_statistics: a meeting started or ended (`change_type`), with its `status`."""

    change_type: str = wx("ChangeType")
    status: int = wx("Status", 0)


@dataclass(frozen=True, slots=True)
class MsgAuditNotifyEvent(Event):
    """msgaudit_notify: new archived chat messages are ready to fetch (`agent_id`: the archive
    app; no other field)."""


@dataclass(frozen=True, slots=True)
class UploadMediaJobFinishEvent(Event):
    """upload_media_job_finish: an asynchronous media upload finished; fetch its result."""

    job_id: str = wx("JobId")


@dataclass(frozen=True, slots=True)
class ChangeChainEvent(Event):
    """change_chain (upstream/downstream organisations): a chain or its groups changed."""

    change_type: str = wx("ChangeType")
    chain_id: str = wx("ChainId")
    group_ids: tuple[str, ...] = wx("GroupIds.GroupId", ())
    corp_ids: tuple[str, ...] = wx("CorpIds.CorpId", ())


@dataclass(frozen=True, slots=True)
class EmailChangeEvent(Event):
    """app_email_change and public_email_change: new mail (`change_type` receive_email), `amount`
    of it; `public_mailbox_id` for a public mailbox."""

    change_type: str = wx("ChangeType")
    amount: int = wx("Amount", 0)
    public_mailbox_id: str = wx("Id")


@dataclass(frozen=True, slots=True)
class ProgramNotifyEvent(Event):
    """program_notify: a notification for a chat-archive program (`notify_id`, `notify_scene`)."""

    notify_id: str = wx("NotifyId")
    notify_scene: int = wx("NotifyScene", 0)


@dataclass(frozen=True, slots=True)
class SecurityEvent(Event):
    """security: a security setting changed (`change_type`, for example change_domain_ip)."""

    change_type: str = wx("ChangeType")


@dataclass(frozen=True, slots=True)
class VipAccountApprovalEvent(Event):
    """submit_vip_account_approval (`apply_reason`, `business_type`) and
    finish_vip_account_approval (`finish_type`) of one `apply_id`."""

    apply_id: str = wx("ApplyId")
    apply_reason: str = wx("ApplyReason")
    business_type: int = wx("BusinessType", 0)
    finish_type: int = wx("FinishType", 0)


@dataclass(frozen=True, slots=True)
class SwitchWorkbenchModeEvent(Event):
    """switch_workbench_mode: the app's workbench display `mode` changed."""

    mode: int = wx("Mode", 0)


@dataclass(frozen=True, slots=True)
class ChangeAppAdminEvent(Event):
    """change_app_admin: the app's administrators changed (`agent_id`; no other field)."""


@dataclass(frozen=True, slots=True)
class UnlicensedNotifyEvent(Event):
    """unlicensed_notify: a member without an account license used the app (`from_user`)."""


@dataclass(frozen=True, slots=True)
class ShareChangeEvent(Event):
    """share_agent_change (corp interconnect) and share_chain_change (upstream/downstream): a
    shared app changed (`agent_id`; no other field in a self-built app's callback)."""


_EVENTS: dict[type[Event], tuple[str, ...]] = {
    LocationEvent: ("LOCATION",),
    ScanCodeEvent: ("scancode_push", "scancode_waitmsg"),
    PicEvent: ("pic_sysphoto", "pic_photo_or_album", "pic_weixin"),
    LocationSelectEvent: ("location_select",),
    TemplateCardEvent: ("template_card_event",),
    TemplateCardMenuEvent: ("template_card_menu_event",),
    ChangeContactEvent: ("change_contact",),
    BatchJobResultEvent: ("batch_job_result",),
    OpenApprovalChangeEvent: ("open_approval_change",),
    SysApprovalChangeEvent: ("sys_approval_change",),
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
    TaskCardClickEvent: ("taskcard_click",),
    ChangeSchoolContactEvent: ("change_school_contact",),
    CustomerAcquisitionEvent: ("customer_acquisition",),
    KfAccountAuthChangeEvent: ("kf_account_auth_change",),
    WedriveFileChangeEvent: ("wedrive_file_change",),
    WedriveSpaceChangeEvent: ("wedrive_space_change",),
    WedriveInsufficientCapacityEvent: ("wedrive_insufficient_capacity",),
    DocChangeEvent: ("doc_change",),
    SmartSheetChangeEvent: ("smart_sheet_change",),
    MeetingChangeEvent: ("meeting_change",),
    MeetingStatisticsEvent: ("meeting_statistics",),
    MsgAuditNotifyEvent: ("msgaudit_notify",),
    UploadMediaJobFinishEvent: ("upload_media_job_finish",),
    ChangeChainEvent: ("change_chain",),
    EmailChangeEvent: ("app_email_change", "public_email_change"),
    ProgramNotifyEvent: ("program_notify",),
    SecurityEvent: ("security",),
    VipAccountApprovalEvent: ("submit_vip_account_approval", "finish_vip_account_approval"),
    SwitchWorkbenchModeEvent: ("switch_workbench_mode",),
    ChangeAppAdminEvent: ("change_app_admin",),
    UnlicensedNotifyEvent: ("unlicensed_notify",),
    ShareChangeEvent: ("share_agent_change", "share_chain_change"),
}
#: Event name (lowercased) -> class. Plain events (subscribe, click, view, ...) are `Event`: their
#: fields are exactly Event's (see "Kinds left generic" in docs/handlers.md).
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {name.lower(): cls for cls, names in _EVENTS.items() for name in names}
)
