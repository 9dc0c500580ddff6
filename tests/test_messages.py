"""messages.parse(): every inbound message and event in the protocol notes (§4), typed, immutable.

The plaintexts are in tests/samples/xml, written from the protocol text. Each one is checked against
an independent reading with xml.etree (trusted test files only): `.raw` must keep every field.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET  # the oracle; reads our own sample files only
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from callback.errors import BadRequest
from callback.inbound import messages, xmlcodec
from callback.inbound.messages import (
    ApprovalChangeEvent,
    ApprovalItem,
    ApprovalNode,
    BatchJobResultEvent,
    CalendarEvent,
    ChangeChainEvent,
    ChangeContactEvent,
    Event,
    ExternalChatEvent,
    ExternalContactEvent,
    ExternalTagEvent,
    ImageMessage,
    InactiveAgentEvent,
    KfMessageEvent,
    LinkMessage,
    LivingStatusEvent,
    LocationEvent,
    LocationMessage,
    LocationSelectEvent,
    MeetingRoomEvent,
    Message,
    NotifyNode,
    OpenApprovalChangeEvent,
    PicEvent,
    ProcessNode,
    ScanCodeEvent,
    SelectedItem,
    ShareChangeEvent,
    SpComment,
    SpDetail,
    SpRecord,
    SysApprovalChangeEvent,
    TemplateCardEvent,
    TemplateCardMenuEvent,
    TextMessage,
    UploadMediaJobFinishEvent,
    VideoMessage,
    VoiceMessage,
)

SAMPLES = Path(__file__).parent / "samples"
VECTORS = Path(__file__).parent / "data" / "crypto_vectors.json"
CORP_ID = "ww6a8d1e7c5b3f2a90"
EXTERNAL_USER = "wmEHkLCgAAnf3QhQwX1r5AuMxlY_8z9w"
CHAT_ID = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
CAL_ID = "wcjgewCwAAqeJcPI1d8Pwbjt7nttzAAA"
SCHEDULE_ID = "17c7d2bd9f20d652840f72f59e796AAA"
RESPONSE_CODE = "Rc_4kJ2x9QeLmN0pZ7vT1sY3wU5aB8cD"


def sample(name: str) -> bytes:
    return (SAMPLES / "xml" / f"{name}.xml").read_bytes()


def etree_fields(plaintext: bytes) -> dict[str, Any]:
    """The oracle: the root's children as nested dicts, repeated tags as tuples, leaves as text."""

    def node(element: ET.Element) -> Any:
        children = list(element)
        if not children:
            return element.text or ""
        out: dict[str, Any] = {}
        for child in children:
            value = node(child)
            if child.tag not in out:
                out[child.tag] = value
            elif isinstance(out[child.tag], tuple):
                out[child.tag] += (value,)
            else:
                out[child.tag] = (out[child.tag], value)
        return out

    fields = node(ET.fromstring(plaintext))
    assert isinstance(fields, dict)
    return fields


def _card(key: str, card_type: str, *selected: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
    return {
        "event_key": key,
        "task_id": "task-20240610-0001",
        "card_type": card_type,
        "response_code": RESPONSE_CODE,
        "selected_items": tuple(SelectedItem(q, ids) for q, ids in selected),
    }


def _ext(change: str, **more: str) -> dict[str, Any]:
    return {"change_type": change, "user_id": "zhangsan", "external_user_id": EXTERNAL_USER} | more


MESSAGE_CASES: list[tuple[str, type[Message], dict[str, Any]]] = [
    (
        "text",
        TextMessage,
        {"content": "你好，今天食堂吃什么？ <b>&</b>", "msg_id": "7351234567890123401"},
    ),
    (
        "image",
        ImageMessage,
        {
            "pic_url": "https://wework.qpic.cn/wwpic/123456_abcdef/0",
            "media_id": "3Yo8ePaXq1N0lX4yw2c7Hq9yjWg0R7oBz5cA8sNpE1uYbK",
        },
    ),
    (
        "voice",
        VoiceMessage,
        {"media_id": "1hA9fK2lR0sVx3uYbWz7QeTt5mNc8pLdGj4oHi6kEr", "format": "amr"},
    ),
    (
        "video",
        VideoMessage,
        {
            "media_id": "2bB7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5xY7zA9cE1gI",
            "thumb_media_id": "4dD6fF8hH0jJ2lL4nN6pP8rR0tT2vV4xX6zZ8bB0dD",
        },
    ),
    (
        "location",
        LocationMessage,
        {
            "latitude": 23.134521,
            "longitude": 113.358803,
            "scale": 20,
            "label": "广州市天河区珠江新城",
            "app_type": "wxwork",
        },
    ),
    (
        "location_from_wechat",  # AppType is absent when sent from WeChat
        LocationMessage,
        {"latitude": 39.908823, "longitude": 116.39747, "scale": 15, "app_type": ""},
    ),
    (
        "link",
        LinkMessage,
        {
            "title": "季度报告",
            "description": "2024 年第二季度经营情况",
            "url": "https://work.example.com/report?q=2&year=2024",
            "pic_url": "https://work.example.com/cover.png",
        },
    ),
    ("unknown_msgtype", Message, {"msg_type": "hologram"}),
]

EVENT_CASES: list[tuple[str, type[Message], dict[str, Any]]] = [
    ("subscribe", Event, {"event": "subscribe", "event_key": ""}),
    ("unsubscribe", Event, {"event": "unsubscribe", "event_key": ""}),
    ("enter_agent", Event, {"event": "enter_agent", "event_key": ""}),
    (
        "LOCATION",
        LocationEvent,
        {
            "event": "LOCATION",
            "latitude": 23.104105,
            "longitude": 113.320107,
            "precision": 65.0,
            "app_type": "wxwork",
        },
    ),
    ("click", Event, {"event": "click", "event_key": "V1001_TODAY"}),
    ("view", Event, {"event_key": "https://work.example.com/oa?from=menu&id=7"}),
    ("view_miniprogram", Event, {"event_key": "pages/index/index?from=menu"}),
    (
        "scancode_push",
        ScanCodeEvent,
        {
            "event_key": "rselfmenu_0_1",
            "scan_type": "qrcode",
            "scan_result": "https://work.example.com/asset/A-1024",
        },
    ),
    (
        "scancode_waitmsg",
        ScanCodeEvent,
        {"scan_type": "barcode", "scan_result": "EAN_13,6901234567892"},
    ),
    (
        "pic_sysphoto",
        PicEvent,
        {"count": 1, "pic_md5_sums": ("1b5f7c23b5bf75682a53e7b6d163e185",)},
    ),
    (
        "pic_photo_or_album",
        PicEvent,
        {"count": 1, "pic_md5_sums": ("5a75aaca956d97be686719218f275c6b",)},
    ),
    (
        "pic_weixin_one",
        PicEvent,
        {"event": "pic_weixin", "count": 1, "pic_md5_sums": ("d41d8cd98f00b204e9800998ecf8427e",)},
    ),
    (
        "pic_weixin_several",
        PicEvent,
        {
            "event": "pic_weixin",
            "count": 3,
            "pic_md5_sums": (
                "0cc175b9c0f1b6a831c399e269772661",
                "92eb5ffee6ae2fec3ad71c777531578f",
                "4a8a08f09d37b73795649038408b5f33",
            ),
        },
    ),
    (
        "pic_weixin_piclist_per_picture",  # one PicList per picture, Count last (WxJava #305)
        PicEvent,
        {
            "event": "pic_weixin",
            "count": 3,
            "pic_md5_sums": (
                "e1671797c52e15f763380b45e841ec32",
                "8277e0910d750195b448797616e091ad",
                "e4da3b7fbbce2345d7772b0674a318d5",
            ),
        },
    ),
    (
        "location_select",
        LocationSelectEvent,
        {
            "event_key": "rselfmenu_2_0",
            "latitude": 23.106021,
            "longitude": 113.32452,
            "scale": 15,
            "label": "广州市海珠区客村艺苑路 106号",
            "poiname": "T.I.T 创意园",
            "app_type": "wxwork",
        },
    ),
    (
        "template_card_event_several_questions",
        TemplateCardEvent,
        _card(
            "submit_key",
            "multiple_interaction",
            ("meal", ("noodles", "rice")),
            ("drink", ("tea",)),
        ),
    ),
    (
        "template_card_event_several_options",
        TemplateCardEvent,
        _card("vote_submit", "vote_interaction", ("venue", ("room-402", "room-501", "online"))),
    ),
    (
        "template_card_event_single_option",
        TemplateCardEvent,
        _card("btn_ok", "button_interaction", ("approve", ("yes",))),
    ),
    (
        "template_card_event_misspelled",  # OpitonIds/OpitonId, as in the SKIT copy of the sample
        TemplateCardEvent,
        _card(
            "submit_key",
            "multiple_interaction",
            ("QuestionKey1", ("OptionId1", "OptionId2")),
            ("QuestionKey2", ("OptionId3",)),
        ),
    ),
    ("template_card_event_no_selection", TemplateCardEvent, _card("key111", "text_notice")),
    (
        "template_card_menu_event",
        TemplateCardMenuEvent,
        {
            "event_key": "menu_mute",
            "task_id": "task-20240610-0001",
            "card_type": "text_notice",
            "response_code": RESPONSE_CODE,
        },
    ),
    (
        "change_contact_create_user",
        ChangeContactEvent,
        {
            "change_type": "create_user",
            "user_id": "zhangsan",
            "new_user_id": "",
            "name": "张三",
            "department": "1,2,3",
            "main_department": "1",
            "position": "产品经理",
            "mobile": "13800000000",
            "gender": "1",
            "email": "zhangsan@example.com",
            "status": "1",
        },
    ),
    (
        "change_contact_update_user",
        ChangeContactEvent,
        {
            "change_type": "update_user",
            "user_id": "zhangsan",
            "new_user_id": "zhangsan01",
            "name": "张三丰",
            "department": "2",
            "position": "技术总监",
        },
    ),
    (
        "change_contact_delete_user",
        ChangeContactEvent,
        {"change_type": "delete_user", "user_id": "lisi"},
    ),
    (
        "change_contact_create_party",
        ChangeContactEvent,
        {"change_type": "create_party", "party_id": "2", "name": "研发中心", "parent_id": "1"},
    ),
    (
        "change_contact_update_party",
        ChangeContactEvent,
        {"change_type": "update_party", "party_id": "2", "name": "研发一部", "parent_id": "1"},
    ),
    (
        "change_contact_delete_party",
        ChangeContactEvent,
        {"change_type": "delete_party", "party_id": "2", "user_id": ""},
    ),
    (
        "change_contact_update_tag",
        ChangeContactEvent,
        {
            "change_type": "update_tag",
            "tag_id": "1",
            "add_user_items": "zhangsan,lisi",
            "del_user_items": "wangwu",
            "add_party_items": "1,2",
            "del_party_items": "3",
        },
    ),
    (
        "batch_job_result",
        BatchJobResultEvent,
        {
            "job_id": "S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4",
            "job_type": "sync_user",
            "err_code": 60123,
            "err_msg": "invalid party id",
        },
    ),
    (
        "open_approval_change",
        OpenApprovalChangeEvent,
        {
            "event": "open_approval_change",
            "third_no": "OA-20240610-0001",
            "open_sp_name": "付款申请",
            "open_template_id": "1234567890",
            "open_sp_status": 2,
            "apply_time": 1718000000,
            "apply_user_name": "张三",
            "apply_user_id": "zhangsan",
            "apply_user_party": "产品部",
            "apply_user_image": "https://wework.qpic.cn/wwhead/zhangsan/0",
            "approver_step": 0,
        },
    ),
    (
        "sys_approval_change",
        SysApprovalChangeEvent,
        {
            "event": "sys_approval_change",
            "sp_no": "202406100001",
            "sp_name": "请假",
            "sp_status": 1,
            "template_id": "3TkZjxugodbqpEMk9U1XKMbVSxKLBPzmdacoXALb",
            "apply_time": 1718000000,
            "applyer_user_id": "zhangsan",
            "applyer_party": "1",
            "notifyer_user_ids": ("wangwu",),
            "statu_change_event": 1,
        },
    ),
    ("share_agent_change", ShareChangeEvent, {"event": "share_agent_change"}),
    ("share_chain_change", ShareChangeEvent, {"event": "share_chain_change"}),
    ("close_inactive_agent", InactiveAgentEvent, {"effect_time": 0}),
    ("reopen_inactive_agent", InactiveAgentEvent, {"effect_time": 0}),
    (
        "living_status_change",
        LivingStatusEvent,
        {"living_id": "lvOQpQDgAAD9Ql0wCaVHvE2Bq4bsZQEw", "status": 1},
    ),
    (
        "kf_msg_or_event",  # no FromUserName, no AgentID
        KfMessageEvent,
        {
            "from_user": "",
            "token": "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
            "open_kf_id": "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw",
        },
    ),
    (
        "change_external_contact_add_external_contact",
        ExternalContactEvent,
        _ext(
            "add_external_contact",
            state="channel_poster_01",
            welcome_code="bOHNsb8VUa8rPzqYmRWKQvAcsNRGnJBVbDp0_A9LEoM",
        ),
    ),
    (
        "change_external_contact_edit_external_contact",
        ExternalContactEvent,
        _ext("edit_external_contact", state="", welcome_code=""),
    ),
    (
        "change_external_contact_add_half_external_contact",
        ExternalContactEvent,
        _ext(
            "add_half_external_contact",
            state="channel_poster_02",
            welcome_code="cPIOtc9WVb9sQarZnSXLRwBdtOSHoKCWEc1q_B0MFpN",
        ),
    ),
    (
        "change_external_contact_del_external_contact",
        ExternalContactEvent,
        _ext("del_external_contact", source="DELETE_BY_TRANSFER"),
    ),
    (
        "change_external_contact_del_follow_user",
        ExternalContactEvent,
        _ext("del_follow_user"),
    ),
    (
        "change_external_contact_transfer_fail",
        ExternalContactEvent,
        _ext("transfer_fail", fail_reason="customer_refused"),
    ),
    (
        "change_external_contact_msg_audit_approved",
        ExternalContactEvent,
        _ext("msg_audit_approved"),
    ),
    (
        "change_external_chat_create",
        ExternalChatEvent,
        {"change_type": "create", "chat_id": CHAT_ID, "mem_change_cnt": 0},
    ),
    (
        "change_external_chat_update",
        ExternalChatEvent,
        {
            "change_type": "update",
            "chat_id": CHAT_ID,
            "update_detail": "add_member",
            "join_scene": 1,
            "quit_scene": 0,
            "mem_change_cnt": 2,
        },
    ),
    (
        "change_external_chat_dismiss",
        ExternalChatEvent,
        {"change_type": "dismiss", "chat_id": CHAT_ID},
    ),
    (
        "change_external_tag_create",
        ExternalTagEvent,
        {"change_type": "create", "tag_id": "etEHkLCgAAxY9Dz1", "tag_type": "tag"},
    ),
    (
        "change_external_tag_update",
        ExternalTagEvent,
        {"change_type": "update", "tag_id": "etEHkLCgAAxY9Dz1", "tag_type": "tag_group"},
    ),
    (
        "change_external_tag_delete",
        ExternalTagEvent,
        {"change_type": "delete", "tag_id": "etEHkLCgAAxY9Dz1"},
    ),
    (
        "change_external_tag_shuffle",
        ExternalTagEvent,
        {"change_type": "shuffle", "tag_id": "etEHkLCgAAxY9Dz2", "strategy_id": "7"},
    ),
    *(
        (name, CalendarEvent, {"event": name, "cal_id": CAL_ID, "schedule_id": ""})
        for name in ("add_calendar", "modify_calendar", "delete_calendar")
    ),
    *(
        (name, CalendarEvent, {"event": name, "cal_id": CAL_ID, "schedule_id": SCHEDULE_ID})
        for name in ("add_schedule", "modify_schedule", "delete_schedule")
    ),
    *(
        (
            name,
            MeetingRoomEvent,
            {
                "event": name,
                "meeting_room_id": "42",
                "booking_id": "mtebsada6e027c123cbafAAA",
                "meeting_id": "mtebsada6e027c123cbafAAA",
            },
        )
        for name in ("book_meeting_room", "cancel_meeting_room")
    ),
    (
        "upload_media_job_finish",
        UploadMediaJobFinishEvent,
        {"job_id": "jobid_S0MrnndvRG5fadSlLwiBqiDDbM143Uq"},
    ),
    ("change_chain", ChangeChainEvent, {"event": "change_chain", "chain_id": "", "group_ids": ()}),
    ("unknown_event", Event, {"event": "quantum_entangle", "event_key": "qk"}),
]

ALL_CASES = MESSAGE_CASES + EVENT_CASES
ALL_SAMPLES = [name for name, _, _ in ALL_CASES]


def test_every_sample_file_is_in_a_table() -> None:
    on_disk = {path.stem for path in (SAMPLES / "xml").glob("*.xml")}
    assert on_disk == set(ALL_SAMPLES)
    assert len(ALL_SAMPLES) == len(set(ALL_SAMPLES))


@pytest.mark.parametrize(("name", "cls", "expected"), ALL_CASES, ids=ALL_SAMPLES)
def test_parse_types_each_field(name: str, cls: type[Message], expected: dict[str, Any]) -> None:
    plaintext = sample(name)
    msg = messages.parse(plaintext)

    assert type(msg) is cls
    for attr, value in expected.items():
        got = getattr(msg, attr)
        assert got == value, attr
        assert type(got) is type(value), attr  # ints as int, floats as float, tuples


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_common_fields_are_typed(name: str) -> None:
    plaintext = sample(name)
    oracle = etree_fields(plaintext)
    msg = messages.parse(plaintext)

    assert msg.to_user == CORP_ID
    assert msg.from_user == oracle.get("FromUserName", "")
    assert type(msg.create_time) is int
    assert msg.create_time == int(oracle["CreateTime"])
    assert msg.msg_type == oracle["MsgType"]
    if "AgentID" in oracle:
        assert msg.agent_id == 1000002
        assert type(msg.agent_id) is int
    else:
        assert msg.agent_id is None
    assert msg.is_event == (oracle["MsgType"] == "event")
    assert msg.kind == oracle.get("Event", oracle["MsgType"])
    assert msg.plaintext == plaintext


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_raw_keeps_every_field(name: str) -> None:
    plaintext = sample(name)
    msg = messages.parse(plaintext)
    assert dict(msg.raw) == etree_fields(plaintext)


def test_parsed_values_are_immutable() -> None:
    """Frozen is a property of the classes, so it is checked once; the containers a parse builds
    (raw, tuples, nested mappings) are checked on the samples that have them."""
    approval = messages.parse(sample("open_approval_change"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        approval.from_user = "mallory"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del approval.create_time
    with pytest.raises(TypeError):
        approval.raw["MsgType"] = "text"  # type: ignore[index]
    assert isinstance(approval, ApprovalChangeEvent)
    with pytest.raises(TypeError):
        approval.approval_info["ThirdNo"] = "forged"  # type: ignore[index]

    card = messages.parse(sample("template_card_event_several_questions"))
    assert isinstance(card, TemplateCardEvent)
    assert type(card.selected_items) is tuple and type(card.selected_items[0].option_ids) is tuple
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.selected_items[0].option_ids = ()  # type: ignore[misc]
    pics = messages.parse(sample("pic_weixin_several"))
    assert isinstance(pics, PicEvent) and type(pics.pic_md5_sums) is tuple

    parsed = [messages.parse(sample(name)) for name in ALL_SAMPLES]
    mutable = [
        (msg.kind, f.name)
        for msg in parsed
        for f in dataclasses.fields(msg)
        if isinstance(getattr(msg, f.name), list | dict | set | bytearray)
    ]
    assert mutable == []  # no class exposes a list or dict, whatever its fields


def mutable_paths(value: Any, path: str = "raw") -> list[str]:
    """Where a dict, list, set or bytearray (anything a handler could change) is reachable."""
    if isinstance(value, dict | list | set | bytearray):
        return [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in mutable_paths(v, f"{path}[{k!r}]")]
    if isinstance(value, tuple):
        return [p for i, v in enumerate(value) for p in mutable_paths(v, f"{path}[{i}]")]
    return []


def test_raw_is_immutable_all_the_way_down() -> None:
    """A handler cannot change a parsed message through `.raw` (nor through `approval_info`, the
    same frozen value): nested elements are read-only mappings, repeated elements tuples."""
    msg = messages.parse(sample("open_approval_change"))
    assert isinstance(msg, ApprovalChangeEvent)
    info = msg.raw["ApprovalInfo"]
    with pytest.raises(TypeError):
        info["ThirdNo"] = "forged"
    with pytest.raises(TypeError):
        msg.approval_info["ThirdNo"] = "forged"  # type: ignore[index]
    nodes = info["ApprovalNodes"]["ApprovalNode"]
    assert type(nodes) is tuple
    with pytest.raises(TypeError):
        nodes[0]["Items"]["Item"][0]["ItemSpeech"] = "forged"
    with pytest.raises(AttributeError):
        nodes.append({"NodeStatus": "2"})
    assert msg.raw["ApprovalInfo"]["ThirdNo"] == msg.approval_info["ThirdNo"] == "OA-20240610-0001"
    assert (
        msg.raw["ApprovalInfo"]["ApprovalNodes"]["ApprovalNode"][0]["Items"]["Item"][0][
            "ItemSpeech"
        ]
        == "同意"
    )

    parsed = [messages.parse(sample(name)) for name in ALL_SAMPLES]
    parsed.append(messages.parse(b'{"MsgType": "text", "A": {"B": [1, {"C": [2, {}]}]}}'))
    reachable = [(msg.kind, path) for msg in parsed for path in mutable_paths(msg.raw)]
    assert reachable == []
    assert mutable_paths(MappingProxyType({"x": ({"y": 1},)})) == ["raw['x'][0]"]  # it finds them


def test_template_card_selected_maps_questions_to_options() -> None:
    several = messages.parse(sample("template_card_event_several_questions"))
    misspelled = messages.parse(sample("template_card_event_misspelled"))
    none = messages.parse(sample("template_card_event_no_selection"))
    assert isinstance(several, TemplateCardEvent)
    assert isinstance(misspelled, TemplateCardEvent)
    assert isinstance(none, TemplateCardEvent)

    assert several.selected == {"meal": ("noodles", "rice"), "drink": ("tea",)}
    assert misspelled.selected == {
        "QuestionKey1": ("OptionId1", "OptionId2"),
        "QuestionKey2": ("OptionId3",),
    }
    assert none.selected == {}


def test_menu_event_is_not_a_card_button_event() -> None:
    menu = messages.parse(sample("template_card_menu_event"))
    assert isinstance(menu, TemplateCardMenuEvent)
    assert not isinstance(menu, TemplateCardEvent)
    assert "SelectedItems" not in menu.raw


def test_open_approval_change_keeps_nested_approval_info() -> None:
    msg = messages.parse(sample("open_approval_change"))
    assert isinstance(msg, ApprovalChangeEvent)
    info = msg.approval_info
    assert info["ThirdNo"] == "OA-20240610-0001"
    assert info["OpenSpName"] == "付款申请"
    assert info["OpenSpStatus"] == "2"
    nodes = info["ApprovalNodes"]["ApprovalNode"]
    assert [node["NodeStatus"] for node in nodes] == ["2", "1"]
    first_items = nodes[0]["Items"]["Item"]
    assert [item["ItemUserId"] for item in first_items] == ["lisi", "wangwu"]
    assert first_items[0]["ItemSpeech"] == "同意"
    assert nodes[1]["Items"]["Item"]["ItemUserId"] == "zhaoliu"  # a single Item is not a list
    assert info["NotifyNodes"]["NotifyNode"]["ItemUserId"] == "qianqi"
    assert info["approverstep"] == "0"
    assert info == msg.raw["ApprovalInfo"]
    with pytest.raises(TypeError):
        info["ThirdNo"] = "forged"  # type: ignore[index]


def test_sys_approval_change_keeps_nested_approval_info() -> None:
    msg = messages.parse(sample("sys_approval_change"))
    assert isinstance(msg, ApprovalChangeEvent)
    info = msg.approval_info
    assert info["SpNo"] == "202406100001"
    assert info["Applyer"] == {"UserId": "zhangsan", "Party": "1"}
    assert info["SpRecord"]["Details"]["Approver"]["UserId"] == "lisi"
    assert info["Notifyer"]["UserId"] == "wangwu"
    assert info["Comments"]["CommentContent"] == "请补充附件"
    assert info["StatuChangeEvent"] == "1"


def test_open_approval_change_types_each_step_and_approver_in_order() -> None:
    msg = messages.parse(sample("open_approval_change"))
    assert isinstance(msg, OpenApprovalChangeEvent) and isinstance(msg, ApprovalChangeEvent)
    head = "https://wework.qpic.cn/wwhead"
    assert msg.approval_nodes == (
        ApprovalNode(
            status=2,
            attr=1,
            node_type=1,
            items=(
                ApprovalItem("李四", "lisi", "", f"{head}/lisi/0", 2, "同意", 1718000300),
                ApprovalItem("王五", "wangwu", "", f"{head}/wangwu/0", 1, "", 0),
            ),
        ),
        ApprovalNode(
            status=1,
            attr=2,
            node_type=2,
            items=(ApprovalItem("赵六", "zhaoliu", "", f"{head}/zhaoliu/0", 1, "", 0),),
        ),
    )
    assert msg.notify_nodes == (NotifyNode("钱七", "qianqi", "", f"{head}/qianqi/0"),)


def test_sys_approval_change_types_records_comments_and_notified_members() -> None:
    msg = messages.parse(sample("sys_approval_change"))
    assert isinstance(msg, SysApprovalChangeEvent) and isinstance(msg, ApprovalChangeEvent)
    assert msg.sp_records == (SpRecord(1, 1, (SpDetail("lisi", "", 1, 0),)),)
    assert msg.comments == (SpComment("zhaoliu", 1718000200, "请补充附件", "6863326468212467898"),)
    assert msg.process_nodes == ()


def test_approval_steps_repeat_at_every_level() -> None:
    """Several records, several details in each, several notified members and comments, several
    process nodes with several sub-nodes: each kept, in order, with its own fields."""
    msg = messages.parse(
        b"<xml><MsgType>event</MsgType><Event>sys_approval_change</Event><ApprovalInfo>"
        b"<SpRecord><SpStatus>2</SpStatus><Details><Approver><UserId>a</UserId></Approver>"
        b"<SpStatus>2</SpStatus><MediaId>m1</MediaId><MediaId>m2</MediaId></Details>"
        b"<Details><Approver><UserId>b</UserId></Approver></Details></SpRecord>"
        b"<SpRecord><ApproverAttr>1</ApproverAttr><Details><Approver><UserId>c</UserId>"
        b"</Approver></Details></SpRecord>"
        b"<Notifyer><UserId>n1</UserId></Notifyer><Notifyer><UserId>n2</UserId></Notifyer>"
        b"<Comments><CommentId>c1</CommentId><Attach>x</Attach><Attach>y</Attach></Comments>"
        b"<Comments><CommentId>c2</CommentId></Comments>"
        b"<ProcessList><NodeList><NodeType>1</NodeType><SubNodeList><UserInfo><UserId>p1</UserId>"
        b"</UserInfo></SubNodeList><SubNodeList><UserInfo><UserId>p2</UserId></UserInfo>"
        b"<Sptime>9</Sptime></SubNodeList></NodeList><NodeList><NodeType>2</NodeType></NodeList>"
        b"</ProcessList></ApprovalInfo></xml>"
    )
    assert isinstance(msg, SysApprovalChangeEvent)
    assert msg.sp_records == (
        SpRecord(2, 0, (SpDetail("a", "", 2, 0, ("m1", "m2")), SpDetail("b"))),
        SpRecord(0, 1, (SpDetail("c"),)),
    )
    assert msg.notifyer_user_ids == ("n1", "n2")
    assert [c.comment_id for c in msg.comments] == ["c1", "c2"]
    assert [c.attach for c in msg.comments] == [("x", "y"), ()]
    assert [n.node_type for n in msg.process_nodes] == [1, 2]
    assert [(s.user_id, s.sp_time) for s in msg.process_nodes[0].sub_nodes] == [
        ("p1", 0),
        ("p2", 9),
    ]
    assert msg.process_nodes[1].sub_nodes == ()
    assert type(msg.process_nodes) is tuple and type(msg.process_nodes[0].sub_nodes) is tuple
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.process_nodes[0].node_type = 3  # type: ignore[misc]
    assert ProcessNode().sub_nodes == ()


def test_change_contact_keeps_ext_attr_in_raw() -> None:
    msg = messages.parse(sample("change_contact_create_user"))
    items = msg.raw["ExtAttr"]["Item"]
    assert [item["Name"] for item in items] == ["爱好", "主页"]
    assert items[0]["Text"]["Value"] == "旅游"
    assert items[1]["Web"]["Url"] == "https://www.example.com/~zhangsan"
    assert msg.raw["IsLeaderInDept"] == "1,0,0"
    assert msg.raw["BizMail"] == "zhangsan@corp.example.com"


@pytest.mark.parametrize("event", ["LOCATION", "location", "Location"])
def test_location_event_class_is_chosen_case_insensitively(event: str) -> None:
    plaintext = sample("LOCATION").replace(b"[LOCATION]", f"[{event}]".encode())
    msg = messages.parse(plaintext)
    assert type(msg) is LocationEvent
    assert msg.kind == event  # the name as sent


# -- unknown types ---------------------------------------------------------------------------


def test_unknown_msgtype_is_a_generic_message_keeping_raw() -> None:
    msg = messages.parse(sample("unknown_msgtype"))
    assert type(msg) is Message
    assert msg.kind == "hologram"
    assert msg.raw["HoloId"] == "h-001"
    assert msg.raw["Frames"] == {"Frame": ("f1", "f2")}
    assert msg.dedup_key == "msg:7351234567890123499"


def test_unknown_event_is_a_generic_event_keeping_raw() -> None:
    msg = messages.parse(sample("unknown_event"))
    assert type(msg) is Event
    assert msg.kind == "quantum_entangle"
    assert msg.raw["Pair"] == {"Left": "a", "Right": "b"}


@pytest.mark.parametrize(
    ("plaintext", "cls", "expected", "digest"),
    [
        (
            b"<xml><MsgType><![CDATA[text]]></MsgType></xml>",
            TextMessage,
            {"msg_type": "text", "content": "", "msg_id": "", "create_time": 0, "agent_id": None},
            "5f34d8403b561162f84e52e3eae7d6fc7f2dc522",
        ),
        (  # no Event at all
            b"<xml><MsgType><![CDATA[event]]></MsgType></xml>",
            Event,
            {"event": "", "kind": "", "event_key": "", "from_user": ""},
            "0d1d4a63e3f75d63b7dba43122f53676fabb3af4",
        ),
        (  # no MsgType at all
            b"<xml><Foo>bar</Foo></xml>",
            Message,
            {"msg_type": "", "kind": "", "is_event": False, "raw": {"Foo": "bar"}},
            "b0fe1863339d4a1487c43bb3924b6d05663cf06e",
        ),
        (
            b'{"MsgType": "event", "Event": "brand_new"}',
            Event,
            {"event": "brand_new", "kind": "brand_new", "is_event": True},
            "5482bf35843f4054a3aa211fc5191bae0cda446f",
        ),
        (
            b'{"Anything": [1, 2, {"x": null}]}',
            Message,
            {"msg_type": "", "raw": {"Anything": (1, 2, {"x": None})}},
            "defde0c266aadc7eee8dd350738e07a6a1e40b4f",
        ),
    ],
    ids=["text-without-fields", "event-without-name", "no-msgtype", "json-event", "json-other"],
)
def test_sparse_or_unknown_input_takes_defaults(
    plaintext: bytes, cls: type[Message], expected: dict[str, Any], digest: str
) -> None:
    msg = messages.parse(plaintext)
    assert type(msg) is cls
    for attr, value in expected.items():
        got = getattr(msg, attr)
        assert (dict(got) if attr == "raw" else got) == value, attr
    assert msg.dedup_key == f"sha1:{digest}"  # no MsgId: the plaintext's SHA-1 (sha1sum)


@pytest.mark.parametrize(
    ("plaintext", "attr", "field", "kept"),
    [
        (b'{"MsgType": "text", "CreateTime": 1e400}', "create_time", "CreateTime", "inf"),
        (b'{"MsgType": "text", "CreateTime": NaN}', "create_time", "CreateTime", "nan"),
        (
            b"<xml><MsgType>text</MsgType><CreateTime>soon</CreateTime></xml>",
            "create_time",
            "CreateTime",
            "soon",
        ),
        (b"<xml><MsgType>text</MsgType><AgentID>abc</AgentID></xml>", "agent_id", "AgentID", "abc"),
        (b"<xml><MsgType>text</MsgType><AgentID></AgentID></xml>", "agent_id", "AgentID", ""),
        (b'{"MsgType": "location", "Scale": 1e400}', "scale", "Scale", "inf"),
        (
            b"<xml><MsgType>location</MsgType><Location_X>north</Location_X></xml>",
            "latitude",
            "Location_X",
            "north",
        ),
    ],
    ids=[
        "json-inf",
        "json-nan",
        "xml-word",
        "agentid-word",
        "agentid-empty",
        "scale-inf",
        "latitude-word",
    ],
)
def test_malformed_numbers_take_the_default_and_stay_in_raw(
    plaintext: bytes, attr: str, field: str, kept: str
) -> None:
    msg = messages.parse(plaintext)
    default = {"create_time": 0, "agent_id": None, "scale": 0, "latitude": 0.0}[attr]
    assert getattr(msg, attr) == default
    assert type(getattr(msg, attr)) is type(default)
    assert str(msg.raw[field]) == kept  # the value as received, for the handler to inspect
    assert set(msg.raw) == {"MsgType", field}


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"hello, not a document",
        b'[{"MsgType": "text"}]',
        b"<xml>only text</xml>",
        b"<xml/>",
        b"<xml><MsgType>text</MsgType>",
        b'{"MsgType": "text", ',
        b'{"MsgType": "\xff"}',
        b"<xml><Content>\xff</Content></xml>",
        b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><Content>&a;</Content></xml>',
        b'<?xml version="1.0" encoding="x-klingon"?><xml><MsgType>text</MsgType></xml>',
        b'<?xml version="1.0" encoding="utf-32"?><xml><MsgType>text</MsgType></xml>',
        b'{"Content": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"<xml><MsgType>text</MsgType><Content>"
        + b"<a>" * 2000
        + b"</a>" * 2000
        + b"</Content></xml>",
    ],
    ids=[
        "empty",
        "prose",
        "json-array",
        "root-text-only",
        "empty-root",
        "truncated-xml",
        "truncated-json",
        "json-not-utf8",
        "xml-not-utf8",
        "doctype",
        "unknown-encoding",
        "multibyte-encoding",
        "json-deeply-nested",
        "xml-deeply-nested",
    ],
)
def test_malformed_plaintext_raises_bad_request_only(plaintext: bytes) -> None:
    with pytest.raises(BadRequest):
        messages.parse(plaintext)


def test_xml_depth_limit_allows_protocol_depths() -> None:
    def nested(depth: int) -> bytes:  # `depth` elements including the root
        return b"<xml>" + b"<a>" * (depth - 1) + b"x" + b"</a>" * (depth - 1) + b"</xml>"

    assert xmlcodec.parse(nested(xmlcodec.MAX_DEPTH))
    with pytest.raises(BadRequest, match="nested"):
        xmlcodec.parse(nested(xmlcodec.MAX_DEPTH + 1))


# -- reading fields: repeated elements, spellings, plain values ------------------------------


def test_a_repeated_element_at_any_step_keeps_every_occurrence_in_order() -> None:
    pics = messages.parse(
        b"<xml><MsgType>event</MsgType><Event>pic_sysphoto</Event><SendPicsInfo>"
        b"<PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item>"
        b"</PicList><PicList><item><PicMd5Sum>c</PicMd5Sum></item></PicList>"
        b"<PicList><item><PicMd5Sum>d</PicMd5Sum></item></PicList><Count>4</Count>"
        b"</SendPicsInfo></xml>"
    )
    assert isinstance(pics, PicEvent)
    assert (pics.count, pics.pic_md5_sums) == (4, ("a", "b", "c", "d"))
    card = messages.parse(
        b"<xml><MsgType>event</MsgType><Event>template_card_event</Event><SelectedItems>"
        b"<SelectedItem><QuestionKey>q1</QuestionKey><OptionIds><OptionId>o1</OptionId>"
        b"</OptionIds><OptionIds><OptionId>o2</OptionId><OptionId>o3</OptionId></OptionIds>"
        b"</SelectedItem><SelectedItem><QuestionKey>q2</QuestionKey></SelectedItem>"
        b"</SelectedItems></xml>"
    )
    assert isinstance(card, TemplateCardEvent)
    assert card.selected_items == (
        SelectedItem("q1", ("o1", "o2", "o3")),
        SelectedItem("q2", ()),
    )


@pytest.mark.parametrize(
    ("plaintext", "attr", "expected"),
    [
        (
            b"<xml><MsgType>text</MsgType><Content>a</Content><Content>b</Content></xml>",
            "content",
            "a",
        ),
        (b"<xml><MsgType>text</MsgType><Content><b>bold</b></Content></xml>", "content", ""),
        (
            b"<xml><MsgType>text</MsgType><AgentID>5</AgentID><AgentID>6</AgentID></xml>",
            "agent_id",
            5,
        ),
        (
            b"<xml><MsgType>event</MsgType><Event>pic_weixin</Event>"
            b"<SendPicsInfo><Count><n>2</n></Count></SendPicsInfo></xml>",
            "count",
            0,
        ),
        (b'{"MsgType": "text", "Content": ["a", "b"]}', "content", "a"),
        (b'{"MsgType": "text", "Content": {"x": 1}}', "content", ""),
        (b'{"MsgType": "text", "MsgId": 7351234567890123401}', "msg_id", "7351234567890123401"),
        (
            b'{"MsgType": "event", "Event": "pic_weixin", "SendPicsInfo": {"PicList": '
            b'[{"item": {"PicMd5Sum": "a"}}, {"item": [{"PicMd5Sum": "b"}, {"PicMd5Sum": 7}]}]}}',
            "pic_md5_sums",
            ("a", "b", "7"),
        ),
    ],
    ids=[
        "repeated-text",
        "text-with-children",
        "repeated-number",
        "number-with-children",
        "json-array-text",
        "json-object-text",
        "json-number-text",
        "json-arrays-at-two-steps",
    ],
)
def test_typed_attributes_are_plain_values_never_reprs(
    plaintext: bytes, attr: str, expected: object
) -> None:
    """A str attribute reads the first occurrence's text (an element with children has none), a
    number the first occurrence's number, a tuple every occurrence: never the text of a dict or
    a list."""
    got = getattr(messages.parse(plaintext), attr)
    assert got == expected
    assert type(got) is type(expected)


def test_field_names_match_in_any_case_and_the_exact_spelling_wins() -> None:
    """Some clients write AgentId for AgentID, ItemUserid for ItemUserId."""
    lower = messages.parse(b"<xml><MsgType>text</MsgType><AgentId>7</AgentId></xml>")
    assert lower.agent_id == 7
    both = messages.parse(
        b"<xml><MsgType>text</MsgType><AgentId>7</AgentId><AgentID>1</AgentID></xml>"
    )
    assert both.agent_id == 1


# -- JSON form -------------------------------------------------------------------------------


def test_official_json_and_xml_plaintexts_parse_to_the_same_value() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    from_xml = messages.parse(vectors["xml_message"]["expected_plaintext"].encode())
    from_json = messages.parse(vectors["json_message"]["expected_plaintext"].encode())

    assert type(from_xml) is type(from_json) is TextMessage
    assert from_xml == from_json
    assert from_json.create_time == 1409659813
    assert from_json.agent_id == 218
    assert from_json.msg_id == "4561255354251345929"
    assert from_xml.dedup_key == from_json.dedup_key == "msg:4561255354251345929"


def test_json_sample_equals_its_xml_twin() -> None:
    from_json = messages.parse((SAMPLES / "json" / "text.json").read_bytes())
    from_xml = messages.parse(sample("text"))
    assert from_json == from_xml
    assert from_json.dedup_key == from_xml.dedup_key


# -- dedup_key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "_cls", "_expected"), MESSAGE_CASES, ids=ALL_SAMPLES[: len(MESSAGE_CASES)]
)
def test_message_dedup_key_is_the_msg_id(name: str, _cls: object, _expected: object) -> None:
    msg = messages.parse(sample(name))
    assert msg.dedup_key == f"msg:{etree_fields(sample(name))['MsgId']}"


#: An event (no MsgId) and its SHA-1 as `sha1sum` prints it, computed outside our code.
CLICK = (
    b"<xml><ToUserName><![CDATA[ww6a8d1e7c5b3f2a90]]></ToUserName>"
    b"<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1718000105</CreateTime>"
    b"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[click]]></Event>"
    b"<EventKey><![CDATA[V1001_TODAY]]></EventKey><AgentID>1000002</AgentID></xml>"
)
CLICK_SHA1 = "02bde217bc322097d3e0db69b5965df65775594a"


def test_event_dedup_key_is_the_plaintext_sha1() -> None:
    """A WeCom retry re-encrypts the same plaintext, so the key is its digest; the stores keep
    keys across restarts and versions, so the digest's form is pinned."""
    msg = messages.parse(CLICK)
    assert type(msg) is Event and msg.event_key == "V1001_TODAY"
    assert msg.dedup_key == f"sha1:{CLICK_SHA1}"


def test_event_dedup_key_tells_apart_events_with_same_user_and_time() -> None:
    click = sample("click")
    other_key = click.replace(b"V1001_TODAY", b"V1002_TOMORROW")
    enter = sample("enter_agent").replace(b"1718000103", b"1718000105")
    keys = {messages.parse(p).dedup_key for p in (click, other_key, enter)}
    parsed = [messages.parse(p) for p in (click, other_key, enter)]
    assert {(m.from_user, m.create_time) for m in parsed} == {("zhangsan", 1718000105)}
    assert len(keys) == 3
