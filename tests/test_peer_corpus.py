"""Conformance with what WeCom really sends: the callback documents other projects collected.

`../shared/testdata/peer_samples/` (next to the checkout; `WECOM_PEER_SAMPLES` overrides) holds
164 decrypted callbacks from 9 projects' tests, odd formatting kept (provenance in its
SOURCES.md). They are read from there, never copied here. Each one is encrypted and posted
through the receive path as WeCom sends it, and the message the handler gets is checked
against a plain reading of the document with `xml.etree` (not our parser):

- the status is 200 and the handler ran once, with the plaintext as sent;
- the document's kind parses as the class this file expects for it (a typed one, or one of the
  kinds docs/handlers.md lists as left generic);
- every typed attribute, nested items included, equals the document's own field at the path
  the attribute declares (`wx()`), read as the type this file states for it (TYPES, not the
  annotations): a lost, mangled or mistyped field fails, and so does a single-valued attribute
  whose field repeats or a number attribute whose field is no number;
- `raw` equals the whole document (repeated elements as tuples);
- every field of the document is read by a typed attribute, or listed below as raw-only with
  the reason.
"""

from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ET  # the oracle; reads other projects' test data only
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from callback import Router
from callback.app import create_app
from callback.devtools.simulator import Simulator
from callback.inbound import messages as m
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
ENV = "WECOM_PEER_SAMPLES"
CORPUS = Path(os.environ.get(ENV) or ROOT.parent / "shared" / "testdata" / "peer_samples")
#: The documents; without the corpus, one name that fails (a missing corpus is never a skip).
FILES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("*/*.xml")) or ["MISSING"]
URL = "/wecom/callback/hr"


def corpus_file(name: str) -> bytes:
    if not (CORPUS / "SOURCES.md").is_file():
        pytest.fail(
            f"the peer corpus is missing: no {CORPUS}/SOURCES.md. CI checks out ../shared next "
            f"to the repository; elsewhere set {ENV} to the peer_samples directory."
        )
    return (CORPUS / name).read_bytes()


def test_the_corpus_is_there_and_complete() -> None:
    """Every document SOURCES.md lists is there, and nothing else: a partial checkout fails."""
    sources = corpus_file("SOURCES.md").decode()
    listed = set(re.findall(r"^\| ([\w-]+/[^ |]+\.xml) \|", sources, re.MULTILINE))
    (total,) = re.findall(r"^(\d+) samples from \d+ repositories", sources, re.MULTILINE)
    assert len(listed) == int(total) == 164
    assert set(FILES) == listed


# -- what each kind parses as ------------------------------------------------------------------

#: The kinds (MsgType, or `event:` + the event name in lower case) found in the corpus.
EXPECTED_CLASS: dict[str, type[m.Message]] = {
    "text": m.TextMessage,
    "image": m.ImageMessage,
    "voice": m.VoiceMessage,
    "video": m.VideoMessage,
    "shortvideo": m.ShortVideoMessage,
    "location": m.LocationMessage,
    "link": m.LinkMessage,
    "notsure": m.Message,
    "event:subscribe": m.Event,
    "event:unsubscribe": m.Event,
    "event:enter_agent": m.Event,
    "event:click": m.Event,
    "event:view": m.Event,
    "event:location": m.LocationEvent,
    "event:scancode_push": m.ScanCodeEvent,
    "event:scancode_waitmsg": m.ScanCodeEvent,
    "event:pic_sysphoto": m.PicEvent,
    "event:pic_photo_or_album": m.PicEvent,
    "event:pic_weixin": m.PicEvent,
    "event:location_select": m.LocationSelectEvent,
    "event:template_card_event": m.TemplateCardEvent,
    "event:taskcard_click": m.TaskCardClickEvent,
    "event:change_contact": m.ChangeContactEvent,
    "event:batch_job_result": m.BatchJobResultEvent,
    "event:open_approval_change": m.OpenApprovalChangeEvent,
    "event:sys_approval_change": m.SysApprovalChangeEvent,
    "event:change_external_contact": m.ExternalContactEvent,
    "event:change_external_chat": m.ExternalChatEvent,
    "event:change_external_tag": m.ExternalTagEvent,
    "event:customer_acquisition": m.CustomerAcquisitionEvent,
    "event:living_status_change": m.LivingStatusEvent,
    "event:kf_msg_or_event": m.KfMessageEvent,
    "event:kf_account_auth_change": m.KfAccountAuthChangeEvent,
    "event:add_schedule": m.CalendarEvent,
    "event:modify_schedule": m.CalendarEvent,
    "event:delete_schedule": m.CalendarEvent,
    "event:modify_calendar": m.CalendarEvent,
    "event:delete_calendar": m.CalendarEvent,
    "event:book_meeting_room": m.MeetingRoomEvent,
    "event:cancel_meeting_room": m.MeetingRoomEvent,
    "event:meeting_change": m.MeetingChangeEvent,
    "event:meeting_statistics": m.MeetingStatisticsEvent,
    "event:close_inactive_agent": m.InactiveAgentEvent,
    "event:reopen_inactive_agent": m.InactiveAgentEvent,
    "event:change_school_contact": m.ChangeSchoolContactEvent,
    "event:change_chain": m.ChangeChainEvent,
    "event:doc_change": m.DocChangeEvent,
    "event:smart_sheet_change": m.SmartSheetChangeEvent,
    "event:wedrive_file_change": m.WedriveFileChangeEvent,
    "event:wedrive_space_change": m.WedriveSpaceChangeEvent,
    "event:wedrive_insufficient_capacity": m.WedriveInsufficientCapacityEvent,
    "event:app_email_change": m.EmailChangeEvent,
    "event:public_email_change": m.EmailChangeEvent,
    "event:upload_media_job_finish": m.UploadMediaJobFinishEvent,
    "event:program_notify": m.ProgramNotifyEvent,
    "event:msgaudit_notify": m.MsgAuditNotifyEvent,
    "event:submit_vip_account_approval": m.VipAccountApprovalEvent,
    "event:finish_vip_account_approval": m.VipAccountApprovalEvent,
    "event:switch_workbench_mode": m.SwitchWorkbenchModeEvent,
    "event:security": m.SecurityEvent,
    "event:change_app_admin": m.ChangeAppAdminEvent,
    "event:unlicensed_notify": m.UnlicensedNotifyEvent,
    "event:share_agent_change": m.ShareChangeEvent,
}

#: Fields a typed attribute does not read, by kind (or by file), and why; `raw` keeps them.
RAW_ONLY: dict[str, tuple[set[str], str]] = {
    "notsure": ({"MsgId"}, "an unknown MsgType: generic on purpose, MsgId is in dedup_key"),
    "text": ({"Id"}, "WxJava's third-party-app samples add an Id WeCom documents for no text"),
    "event:sys_approval_change": ({"ApprovalInfo.SpNoStr"}, "Senparc's text copy of SpNo"),
    "event:change_contact": ({"ExtAttr.Item.Value"}, "WxJava's copy of Item.Text.Value"),
    "video": (
        {"Video.Title", "Video.Description"},
        "go-wecom's video in the passive-reply shape (media_id reads Video.MediaId); an "
        "inbound video has no title",
    ),
    "wxjava/text__WxCpXmlMessageTest_L24.xml": (
        {
            *("PicUrl", "MediaId", "Format", "ThumbMediaId", "Location_X", "Location_Y"),
            *("Scale", "Label", "Description", "Url", "Title", "Event", "EventKey", "Ticket"),
            *("Latitude", "Longitude", "Precision", "ScanCodeInfo.ScanType"),
            *(
                "ScanCodeInfo.ScanResult",
                "SendPicsInfo.Count",
                "SendPicsInfo.PicList.item.PicMd5Sum",
            ),
            *("SendLocationInfo.Location_X", "SendLocationInfo.Location_Y"),
            *("SendLocationInfo.Scale", "SendLocationInfo.Label", "SendLocationInfo.Poiname"),
        },
        "WxJava's kitchen-sink document: a text message carrying every field of every kind",
    ),
}


def kind_of(root: ET.Element) -> str:
    msg_type = root.findtext("MsgType") or ""
    return f"event:{(root.findtext('Event') or '').lower()}" if msg_type == "event" else msg_type


# -- the oracle: the document read with xml.etree ---------------------------------------------


def children(element: ET.Element, name: str) -> list[ET.Element]:
    """The children named `name`, else those whose name differs only in case (the first such)."""
    exact = [c for c in element if c.tag == name]
    if exact:
        return exact
    folded = [c for c in element if c.tag.casefold() == name.casefold()]
    return [c for c in folded if c.tag == folded[0].tag]


def at_path(element: ET.Element, path: str) -> list[ET.Element]:
    """Every element at the dotted `path` below `element`, in document order."""
    found = [element]
    for name in path.split("."):
        found = [child for parent in found for child in children(parent, name)]
    return found


def as_value(element: ET.Element) -> Any:
    """An element as `raw` keeps it: text, or a mapping with repeated children as tuples."""
    kids = list(element)
    if not kids:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in kids:
        value = as_value(child)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], tuple):
            out[child.tag] += (value,)
        else:
            out[child.tag] = (out[child.tag], value)
    return out


def leaf_text(element: ET.Element) -> str | None:
    return None if len(element) else (element.text or "")


def number(kind: type, element: ET.Element) -> int | float | None:
    text = leaf_text(element)
    try:
        return kind(text) if text else None
    except ValueError:
        return None


#: What each typed attribute must be, stated here (not read from the annotations): a type, a
#: tuple of text `(str,)`, a tuple of items `(Part,)`, or `Mapping` (the element as a mapping).
COMMON: dict[str, Any] = {
    "to_user": str,
    "from_user": str,
    "create_time": int,
    "msg_type": str,
    "agent_id": int | None,
}
USER = COMMON | {"msg_id": str}
EVENT = COMMON | {"event": str, "event_key": str}
CARD = EVENT | {"task_id": str, "card_type": str, "response_code": str}
MEDIA = USER | {"media_id": str, "thumb_media_id": str}
# fmt: off
TYPES: dict[type, dict[str, Any]] = {
    m.Message: COMMON,
    m.TextMessage: USER | {"content": str},
    m.ImageMessage: USER | {"pic_url": str, "media_id": str},
    m.VoiceMessage: USER | {"media_id": str, "format": str},
    m.VideoMessage: MEDIA,
    m.ShortVideoMessage: MEDIA,
    m.LocationMessage: USER | {"latitude": float, "longitude": float, "scale": int,
                               "label": str, "app_type": str},
    m.LinkMessage: USER | {"title": str, "description": str, "url": str, "pic_url": str},
    m.Event: EVENT,
    m.LocationEvent: EVENT | {"latitude": float, "longitude": float, "precision": float,
                              "app_type": str},
    m.ScanCodeEvent: EVENT | {"scan_type": str, "scan_result": str},
    m.PicEvent: EVENT | {"count": int, "pic_md5_sums": (str,)},
    m.LocationSelectEvent: EVENT | {"latitude": float, "longitude": float, "scale": int,
                                    "label": str, "poiname": str, "app_type": str},
    m.TemplateCardEvent: CARD | {"selected_items": (m.SelectedItem,)},
    m.SelectedItem: {"question_key": str, "option_ids": (str,)},
    m.TaskCardClickEvent: EVENT | {"task_id": str},
    m.ChangeContactEvent: EVENT | {
        "change_type": str, "user_id": str, "new_user_id": str, "name": str, "department": str,
        "main_department": str, "position": str, "mobile": str, "gender": str, "email": str,
        "status": str, "party_id": str, "parent_id": str, "tag_id": str, "add_user_items": str,
        "del_user_items": str, "add_party_items": str, "del_party_items": str,
        "is_leader_in_dept": str, "direct_leader": str, "biz_mail": str, "avatar": str,
        "alias": str, "telephone": str, "address": str, "order": int, "ext_attrs": (m.ExtAttr,),
    },
    m.ExtAttr: {"name": str, "attr_type": int, "text": str, "web_title": str, "web_url": str},
    m.BatchJobResultEvent: EVENT | {"job_id": str, "job_type": str, "err_code": int,
                                    "err_msg": str},
    m.OpenApprovalChangeEvent: EVENT | {
        "approval_info": Mapping, "third_no": str, "open_sp_name": str, "open_template_id": str,
        "open_sp_status": int, "apply_time": int, "apply_user_name": str, "apply_user_id": str,
        "apply_user_party": str, "apply_user_image": str, "approval_nodes": (m.ApprovalNode,),
        "notify_nodes": (m.NotifyNode,), "approver_step": int,
    },
    m.ApprovalNode: {"status": int, "attr": int, "node_type": int, "items": (m.ApprovalItem,)},
    m.ApprovalItem: {"name": str, "user_id": str, "party": str, "image": str, "status": int,
                     "speech": str, "op_time": int},
    m.NotifyNode: {"name": str, "user_id": str, "party": str, "image": str},
    m.SysApprovalChangeEvent: EVENT | {
        "approval_info": Mapping, "sp_no": str, "sp_name": str, "sp_status": int,
        "template_id": str, "apply_time": int, "applyer_user_id": str, "applyer_party": str,
        "sp_records": (m.SpRecord,), "notifyer_user_ids": (str,), "comments": (m.SpComment,),
        "process_nodes": (m.ProcessNode,), "statu_change_event": int,
    },
    m.SpRecord: {"sp_status": int, "approver_attr": int, "details": (m.SpDetail,)},
    m.SpDetail: {"user_id": str, "speech": str, "sp_status": int, "sp_time": int,
                 "media_ids": (str,)},
    m.SpComment: {"user_id": str, "time": int, "content": str, "comment_id": str,
                  "attach": (str,)},
    m.ProcessNode: {"node_type": int, "sp_status": int, "apv_rel": int,
                    "sub_nodes": (m.ProcessSubNode,)},
    m.ProcessSubNode: {"user_id": str, "speech": str, "sp_yj": int, "sp_time": int,
                       "media_ids": (str,)},
    m.ExternalContactEvent: EVENT | {"change_type": str, "user_id": str,
                                     "external_user_id": str, "state": str,
                                     "welcome_code": str, "source": str, "fail_reason": str},
    m.ExternalChatEvent: EVENT | {"change_type": str, "chat_id": str, "update_detail": str,
                                  "join_scene": int, "quit_scene": int, "mem_change_cnt": int,
                                  "last_mem_ver": str, "cur_mem_ver": str},
    m.ExternalTagEvent: EVENT | {"change_type": str, "tag_id": str, "tag_type": str,
                                 "strategy_id": str},
    m.CustomerAcquisitionEvent: EVENT | {"change_type": str, "link_id": str, "user_id": str,
                                         "external_user_id": str, "state": str, "chat_key": str},
    m.LivingStatusEvent: EVENT | {"living_id": str, "status": int},
    m.KfMessageEvent: EVENT | {"token": str, "open_kf_id": str},
    m.KfAccountAuthChangeEvent: EVENT | {"auth_add_open_kf_ids": (str,),
                                         "auth_del_open_kf_ids": (str,)},
    m.CalendarEvent: EVENT | {"cal_id": str, "schedule_id": str},
    m.MeetingRoomEvent: EVENT | {"meeting_room_id": str, "booking_id": str},
    m.MeetingChangeEvent: EVENT | {"change_type": str, "meeting_id": str},
    m.MeetingStatisticsEvent: EVENT | {"change_type": str, "status": int},
    m.InactiveAgentEvent: EVENT | {"effect_time": int},
    m.ChangeSchoolContactEvent: EVENT | {"change_type": str, "target_id": str},
    m.ChangeChainEvent: EVENT | {"change_type": str, "chain_id": str, "group_ids": (str,),
                                 "corp_ids": (str,)},
    m.DocChangeEvent: EVENT | {"change_type": str, "doc_ids": (str,), "form_ids": (str,)},
    m.SmartSheetChangeEvent: EVENT | {"change_type": str, "doc_id": str, "sheet_id": str,
                                      "field_ids": (str,), "record_ids": (str,)},
    m.WedriveFileChangeEvent: EVENT | {"change_type": str, "file_ids": (str,)},
    m.WedriveSpaceChangeEvent: EVENT | {"change_type": str, "space_ids": (str,)},
    m.WedriveInsufficientCapacityEvent: EVENT,
    m.EmailChangeEvent: EVENT | {"change_type": str, "amount": int, "public_mailbox_id": str},
    m.UploadMediaJobFinishEvent: EVENT | {"job_id": str},
    m.ProgramNotifyEvent: EVENT | {"notify_id": str, "notify_scene": int},
    m.MsgAuditNotifyEvent: EVENT,
    m.VipAccountApprovalEvent: EVENT | {"apply_id": str, "apply_reason": str,
                                        "business_type": int, "finish_type": int},
    m.SwitchWorkbenchModeEvent: EVENT | {"mode": int},
    m.SecurityEvent: EVENT | {"change_type": str},
    m.ChangeAppAdminEvent: EVENT,
    m.UnlicensedNotifyEvent: EVENT,
    m.ShareChangeEvent: EVENT,
}
# fmt: on
DEFAULTS: dict[Any, Any] = {str: "", int: 0, float: 0.0, int | None: None, Mapping: {}}


def paths(cls: type) -> dict[str, tuple[str, ...]]:
    """The WeCom field paths each typed attribute of `cls` declares it reads (its `wx()`)."""
    return {f.name: f.metadata["wx"] for f in dataclasses.fields(cls) if "wx" in f.metadata}


def test_every_typed_attribute_has_a_stated_type() -> None:
    for cls, types in TYPES.items():
        assert set(paths(cls)) == set(types), cls.__name__


def expected(cls: type, element: ET.Element, problems: list[str]) -> dict[str, Any]:
    """What each typed attribute of `cls` must be for this element: the first declared path
    present, read as TYPES says; the type's default when no path is present. A scalar with
    several occurrences (all but one would be lost) or a number that is not one is a problem."""
    values = {}
    for name, names in paths(cls).items():
        kind = TYPES[cls][name]
        found = next((hits for hits in (at_path(element, p) for p in names) if hits), [])
        value: Any = None
        if isinstance(kind, tuple):
            (item,) = kind
            if item is str:
                value = tuple(t for t in map(leaf_text, found) if t is not None)
            else:
                value = tuple(item(**expected(item, e, problems)) for e in found)
        elif found and len(found) > 1:
            problems.append(f"{cls.__name__}.{name}: {len(found)} occurrences, one attribute")
        elif found and kind is str:
            value = leaf_text(found[0])
        elif found and kind is Mapping:
            value = as_value(found[0]) if len(found[0]) else None
        elif found:
            value = number(float if kind is float else int, found[0])
            if value is None and leaf_text(found[0]):
                problems.append(f"{cls.__name__}.{name}: {leaf_text(found[0])!r} is no number")
        values[name] = DEFAULTS[kind] if value is None else value
    return values


def read_paths(cls: type, prefix: str = "") -> set[str]:
    """The document paths the typed attributes of `cls` read (lower case; not the mappings)."""
    read = set()
    for name, names in paths(cls).items():
        kind = TYPES[cls][name]
        for path in (f"{prefix}{n}".lower() for n in names):
            if isinstance(kind, tuple) and kind[0] is not str:
                read |= read_paths(kind[0], f"{path}.")
            elif kind is not Mapping:
                read.add(path)
    return read


def leaf_paths(element: ET.Element, prefix: str = "") -> set[str]:
    """The dotted path of every element without children below `element`."""
    leaves = set()
    for child in element:
        path = f"{prefix}{child.tag}"
        leaves |= leaf_paths(child, f"{path}.") if len(child) else {path}
    return leaves


def compare(got: Any, want: Any, where: str) -> list[str]:
    """Differences between a parsed value and the oracle's, by value and by type."""
    if dataclasses.is_dataclass(want) and not isinstance(want, type):
        if type(got) is not type(want):
            return [f"{where}: {type(got).__name__}, expected {type(want).__name__}"]
        return [
            d
            for f in dataclasses.fields(want)
            if "wx" in f.metadata  # the typed attributes (raw is compared on its own)
            for d in compare(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
        ]
    if isinstance(want, tuple) and isinstance(got, tuple) and len(got) == len(want):
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in compare(g, w, f"{where}[{i}]")
        ]
    if isinstance(want, Mapping):
        return [] if isinstance(got, Mapping) and got == want else [f"{where}: {got!r} != {want!r}"]
    if got != want or type(got) is not type(want):
        return [f"{where}: {got!r} ({type(got).__name__}) != {want!r} ({type(want).__name__})"]
    return []


# -- through the receive path -------------------------------------------------------------------


def receive(sim: Simulator, plaintext: bytes) -> tuple[int, list[m.Message]]:
    seen: list[m.Message] = []
    router = Router()
    router.add("default", None, lambda message, ctx: seen.append(message))
    c: FlaskClient = create_app(make_settings(), router=router).test_client()
    query, body = sim.post(plaintext)
    return c.post(URL, query_string=query, data=body).status_code, seen


@pytest.mark.parametrize("name", FILES)
def test_each_document_is_received_and_every_typed_attribute_matches(
    sim: Simulator, name: str
) -> None:
    plaintext = corpus_file(name)
    root = ET.fromstring(plaintext)
    kind = kind_of(root)

    status, seen = receive(sim, plaintext)
    assert status == 200
    (msg,) = seen
    assert msg.plaintext == plaintext

    assert kind in EXPECTED_CLASS, f"{kind} is new: give it a class, or list it as generic"
    assert type(msg) is EXPECTED_CLASS[kind]
    problems: list[str] = []
    want = type(msg)(**expected(type(msg), root, problems))
    assert problems == []
    assert compare(msg, want, type(msg).__name__) == []
    assert msg.raw == as_value(root)

    raw_only = set()
    for key in (kind, name):
        raw_only |= {p.lower() for p in RAW_ONLY.get(key, (set(), ""))[0]}
    unread = {p for p in leaf_paths(root) if p.lower() not in read_paths(type(msg)) | raw_only}
    assert not unread, f"{name}: no typed attribute reads {sorted(unread)}"


def test_the_kinds_left_generic_are_the_documented_ones() -> None:
    """docs/handlers.md lists each kind that parses as a plain Event or Message, with why."""
    kinds = {kind_of(ET.fromstring(corpus_file(name))) for name in FILES}
    assert kinds == set(EXPECTED_CLASS)
    generic = {k for k, cls in EXPECTED_CLASS.items() if cls in (m.Event, m.Message)}
    assert generic == {
        "notsure",
        *("event:subscribe", "event:unsubscribe", "event:enter_agent"),
        *("event:click", "event:view"),
    }
    doc = (ROOT / "docs" / "handlers.md").read_text(encoding="utf-8")
    section = doc.split("### Kinds left generic", 1)[1].split("\n#", 1)[0]
    for kind in generic:
        assert f"`{kind.removeprefix('event:')}`" in section, kind


def test_the_oracle_sees_what_a_lost_or_mangled_field_would_be(sim: Simulator) -> None:
    """The comparison itself: a parsed value with a field lost (one of two sums), mangled (the
    text of a dict, the bug this corpus found) or mistyped (a count as text) no longer compares
    equal, so a parser doing that fails the test above."""
    plaintext = corpus_file("wxjava/pic_weixin__WxCpXmlMessageTest_L107.xml")
    root = ET.fromstring(plaintext)
    _, (msg,) = receive(sim, plaintext)
    assert isinstance(msg, m.PicEvent)
    want = m.PicEvent(**expected(m.PicEvent, root, []))
    assert want.pic_md5_sums == (
        "aef52ae501537e552725c5d7f99c1741",
        "c4564632a4fab91378c39bea6aad6f9e",
    )
    assert compare(msg, want, "PicEvent") == []
    lost = dataclasses.replace(msg, pic_md5_sums=msg.pic_md5_sums[:1])
    mangled = dataclasses.replace(msg, pic_md5_sums=("{'PicMd5Sum': 'aef52ae5'}",) * 2)
    mistyped = dataclasses.replace(msg, count="2")  # type: ignore[arg-type]
    for wrong in (lost, mangled, mistyped):
        assert compare(wrong, want, "PicEvent") != []
