"""How RedisStore writes inbox records and outbox items as hash fields, and reads them back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from callback.store.records import InboxRecord, OutboxItem

Fields = list[str | bytes]


def number(value: float) -> str:
    """A float as text that reads back as the same float (in Python and in Lua's tonumber)."""
    return repr(float(value))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def inbox_fields(r: InboxRecord, claim: str) -> Fields:
    """The record as field/value pairs; `claim` is the token of the call that stores it."""
    fields: Fields = [
        "key", r.key, "app", r.app, "plaintext", r.plaintext, "as_json", str(int(r.as_json)),
        "state", r.state, "owner", r.owner, "lease_until", number(r.lease_until),
        "pushed", str(int(r.pushed)), "attempts", str(r.attempts),
        "created_at", number(r.created_at), "finished_at", number(r.finished_at),
        "retries", str(r.retries), "claim", claim,
    ]  # fmt: skip
    if r.reply is not None:
        fields += ["reply", r.reply]
    return fields


def outbox_fields(i: OutboxItem, token: str) -> Fields:
    """The whole item as field/value pairs; `token` marks the call that adds it."""
    return [
        "id", i.id, "app", i.app, "api", i.api, "bodies", _json(i.bodies), "owner", i.owner,
        "lease_until", number(i.lease_until), "created_at", number(i.created_at), "lease", "",
        "token", token, *_progress(i),
    ]  # fmt: skip


def progress_fields(i: OutboxItem) -> Fields:
    """What `outbox_save` stores: the progress, with the lease given back."""
    return [*_progress(i), "lease_until", "0.0", "lease", ""]


def _progress(i: OutboxItem) -> Fields:
    return [
        "parts_done", str(i.parts_done), "state", i.state, "attempts", str(i.attempts),
        "next_at", number(i.next_at), "error", i.error, "results", _json(i.results),
    ]  # fmt: skip


def as_hash(reply: Any) -> dict[str, bytes]:
    """HGETALL's answer (a mapping, or a flat list from a script) with text field names."""
    if isinstance(reply, Mapping):
        return {_text(k): bytes(v) for k, v in reply.items()}
    flat: Sequence[bytes] = reply
    return {_text(flat[n]): bytes(flat[n + 1]) for n in range(0, len(flat), 2)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def inbox_record(h: Mapping[str, bytes], created: bool = False) -> InboxRecord:
    return InboxRecord(
        key=h["key"].decode(), app=h["app"].decode(), plaintext=h["plaintext"],
        as_json=h["as_json"] == b"1", state=h["state"].decode(), owner=h["owner"].decode(),
        lease_until=float(h["lease_until"]), reply=h.get("reply"), pushed=h["pushed"] == b"1",
        attempts=int(h["attempts"]), created_at=float(h["created_at"]),
        finished_at=float(h.get("finished_at", b"0")), retries=int(h.get("retries", b"0")),
        created=created,
    )  # fmt: skip


def outbox_item(h: Mapping[str, bytes]) -> OutboxItem:
    return OutboxItem(
        id=h["id"].decode(), app=h["app"].decode(), api=h["api"].decode(),
        bodies=tuple(json.loads(h["bodies"])), parts_done=int(h["parts_done"]),
        state=h["state"].decode(), attempts=int(h["attempts"]), next_at=float(h["next_at"]),
        owner=h["owner"].decode(), lease_until=float(h["lease_until"]), error=h["error"].decode(),
        created_at=float(h["created_at"]), results=tuple(json.loads(h["results"])),
    )  # fmt: skip
