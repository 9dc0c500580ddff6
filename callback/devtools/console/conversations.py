"""AI-bot chats: what each member said to a bot (the bot's inbox records) and the answer as
their refreshes show it (the message's stream in the store), or a welcome."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from callback.store.records import InboxRecord

from .chats import APP, MEMBER, ChatItem
from .sources import Sources


def _said(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = str(raw.get("msgtype", ""))
    if kind == "text":
        return "text", {"content": str((raw.get("text") or {}).get("content", ""))}
    if kind == "event":
        event = raw.get("event") or {}
        return "event", {"event": str(event.get("eventtype", "")), "key": ""}
    return kind, {}


def bot_chats(
    records: Iterable[InboxRecord], bots: Collection[str], sources: Sources
) -> dict[str, list[ChatItem]]:
    """Every member's chat with the AI bots, oldest first."""
    chats: dict[str, list[ChatItem]] = {}
    for record in records:
        if record.app not in bots:
            continue
        try:
            raw = json.loads(record.plaintext)
        except ValueError:
            continue
        if not isinstance(raw, dict):
            continue
        member = str((raw.get("from") or {}).get("userid", "")).lower()
        kind, content = _said(raw)
        items = chats.setdefault(member, [])
        items.append(ChatItem(record.key, record.created_at, record.app, MEMBER, kind, content,
                              key=record.key))  # fmt: skip
        msgid = record.key.split(":", 1)[1]
        stream = sources.stream(record.app, msgid) if kind == "text" else None
        if stream is not None:
            shown = {"content": stream.content, "finished": stream.finished,
                     "stream_id": stream.stream_id}  # fmt: skip
            items.append(ChatItem(f"{record.key}:stream", record.created_at + 0.001, record.app,
                                  APP, "stream", shown, "passive", key=record.key))  # fmt: skip
        elif record.reply:
            welcome = _reply_text(record.reply)
            if welcome is not None:
                items.append(ChatItem(f"{record.key}:reply", record.finished_at or
                                      record.created_at, record.app, APP, "text",
                                      {"content": welcome}, "passive", key=record.key))  # fmt: skip
    for items in chats.values():
        items.sort(key=lambda item: item.at)
    return chats


def _reply_text(reply: bytes) -> str | None:
    try:
        loaded = json.loads(reply)
    except ValueError:
        return None
    text = loaded.get("text") if isinstance(loaded, dict) else None
    return str(text.get("content", "")) if isinstance(text, dict) else None
