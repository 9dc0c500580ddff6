"""Chats as WeCom shows them to each member: what the member sent (from the inbox), the
passive replies (cached in the inbox), what the emulator received for them (through the send
API), cards updated after a click and recalled messages marked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from callback.errors import WecomError
from callback.inbound import messages, xmlcodec
from callback.inbound.messages import Event, TemplateCardMenuEvent, TextMessage
from callback.store.records import InboxRecord

from .sources import EmulatorRecords

MEMBER, APP = "member", "app"


@dataclass(frozen=True)
class ChatItem:
    """One bubble: who sent it, its WeCom msgtype and payload, and how it came."""

    id: str
    at: float
    app: str
    sender: str  # MEMBER or APP
    msgtype: str
    content: Mapping[str, Any]
    via: str = ""  # "passive" (the callback's answer), "pushed" (the send API) or ""
    msgid: str = ""  # the send API's msgid: card buttons act on it
    recalled: bool = False
    updated: bool = False
    key: str = ""  # the callback (inbox key) this is, or answers

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def snake(value: Any) -> Any:
    """A passive reply's CamelCase XML fields in the send API's snake_case (MainTitle ->
    main_title), recursively."""
    if isinstance(value, Mapping):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


def reply_fields(plaintext: bytes) -> dict[str, Any]:
    """A passive reply's plaintext (XML or JSON) as a dict of its fields."""
    if plaintext.lstrip()[:1] == b"{":
        loaded = json.loads(plaintext)
        return loaded if isinstance(loaded, dict) else {}
    node: Any = next(iter(xmlcodec.parse(plaintext).values()), {})
    return dict(node) if isinstance(node, dict) else {}


def member_said(record: InboxRecord, message: messages.Message) -> ChatItem:
    """The member's own bubble for a callback: a text, a menu click, a card button."""
    content: dict[str, Any]
    if isinstance(message, TextMessage):
        msgtype, content = "text", {"content": message.content}
    elif isinstance(message, Event):
        msgtype, content = "event", {"event": message.event, "key": message.event_key}
        if isinstance(message, TemplateCardMenuEvent):
            selected = getattr(message, "selected", {})
            content |= {"task_id": message.task_id}
            content |= {"selected": {k: list(v) for k, v in selected.items()}}
    else:
        msgtype, content = message.msg_type, {}
    at = record.created_at
    return ChatItem(record.key, at, record.app, MEMBER, msgtype, content, key=record.key)


def passive(record: InboxRecord, message: messages.Message) -> ChatItem | dict[str, Any] | None:
    """The passive reply WeCom showed: a bubble, or a card update (a dict) for the card whose
    task_id the click carried."""
    if not record.reply or record.pushed:
        return None
    try:
        fields = reply_fields(record.reply)
    except (ValueError, WecomError):
        return None
    kind = str(fields.get("MsgType", ""))
    task_id = getattr(message, "task_id", "")
    if kind == "update_button":
        name = (fields.get("Button") or {}).get("ReplaceName", "")
        return {"task_id": task_id, "replace_name": str(name)}
    if kind == "update_template_card":
        return {"task_id": task_id, "card": snake(fields.get("TemplateCard") or {})}
    if kind == "text":
        content: dict[str, Any] = {"content": str(fields.get("Content", ""))}
    elif kind == "news":
        items = (fields.get("Articles") or {}).get("item") or []
        content = {"articles": snake(items if isinstance(items, list) else [items])}
    else:
        content = snake({k: v for k, v in fields.items() if k not in _HEAD})
    at = record.finished_at or record.created_at
    return ChatItem(f"{record.key}:passive", at, record.app, APP, kind, content, "passive",
                    key=record.key)  # fmt: skip


_HEAD = ("ToUserName", "FromUserName", "CreateTime", "MsgType")


def app_chats(
    records: Iterable[InboxRecord], emulator: EmulatorRecords, agents: Mapping[int, str]
) -> dict[str, list[ChatItem]]:
    """Every member's chat with the apps, oldest first; `agents` names apps by agent id."""
    chats: dict[str, list[ChatItem]] = {}
    updates: list[tuple[str, dict[str, Any]]] = []
    for record in records:
        try:
            message = messages.parse(record.plaintext)
        except WecomError:
            continue
        member = message.from_user.lower()
        chats.setdefault(member, []).append(member_said(record, message))
        answer = passive(record, message)
        if isinstance(answer, ChatItem):
            chats[member].append(answer)
        elif answer is not None:
            updates.append((member, answer))
    for sent in emulator.messages:
        body, kind = sent.get("body") or {}, str(sent.get("msgtype", ""))
        for member in sent.get("touser") or []:
            chats.setdefault(member, []).append(ChatItem(
                f"msg:{sent['msgid']}", float(sent.get("sent_at", 0)),
                agents.get(int(sent.get("agent_id", 0)), str(sent.get("agent_id"))), APP, kind,
                body.get(kind) or {}, "pushed", str(sent["msgid"]), bool(sent.get("recalled")),
            ))  # fmt: skip
    for member, items in chats.items():
        items.sort(key=lambda item: item.at)
        chats[member] = _updated(items, member, updates, emulator.updates)
    return chats


def _updated(
    items: list[ChatItem],
    member: str,
    passive_updates: Iterable[tuple[str, dict[str, Any]]],
    pushed_updates: Iterable[Mapping[str, Any]],
) -> list[ChatItem]:
    """The chat with every card update applied: a passive one finds its card by task_id, a
    pushed one (update_template_card) by msgid, for the members it names."""
    out = list(items)
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("task_id", u["task_id"], u) for who, u in passive_updates if who == member
    ]
    for update in pushed_updates:
        body = update.get("body") or {}
        users = [str(u).lower() for u in body.get("userids") or []]
        if body.get("atall") or member in users:
            change = {"replace_name": (body.get("button") or {}).get("replace_name")}
            if body.get("template_card"):
                change = {"card": body["template_card"]}
            changes.append(("msgid", str(update.get("msgid")), change))
    for field, wanted, change in changes:
        for n, item in enumerate(out):
            if item.msgtype != "template_card":
                continue
            found = item.msgid if field == "msgid" else item.content.get("task_id")
            if found == wanted:
                card = dict(change["card"]) if change.get("card") else dict(item.content)
                if change.get("replace_name"):
                    card["replace_name"] = change["replace_name"]
                out[n] = replace(item, content=card, updated=True)
    return out
