"""The timeline of callbacks, from the real records: each inbox record (received, claimed,
its route and handler, time taken, passive or pushed, retries absorbed) with the outbox items
it caused (attempts, errors, dead letters)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from callback.errors import WecomError
from callback.inbound.messages import Event, Message, TextMessage
from callback.router import Match, Route
from callback.store.records import DONE, InboxRecord, OutboxItem

Resolve = Callable[[Message, str], "tuple[Route, Match] | None"]
Parse = Callable[[InboxRecord], Message]


@dataclass(frozen=True)
class OutboxStep:
    """An outbox item as the timeline shows it (never its bodies)."""

    id: str
    api: str
    state: str  # pending, done or dead
    failed: int  # attempts that failed (retried, or given up: dead)
    parts: int
    parts_done: int
    error: str
    msgids: tuple[str, ...]

    @classmethod
    def of(cls, item: OutboxItem) -> OutboxStep:
        msgids = tuple(str(r["msgid"]) for r in item.results if r.get("msgid"))
        return cls(item.id, item.api, item.state, item.attempts, len(item.bodies),
                   item.parts_done, item.error, msgids)  # fmt: skip


@dataclass(frozen=True)
class TimelineEntry:
    """One callback's way through the server."""

    key: str
    app: str
    member: str
    what: str  # "text 'hello'", "click MENU_HELP", ...
    received_at: float
    state: str  # running or done
    owner: str  # the process that claimed it
    attempts: int  # runs of its handler (more than 1 after a crash)
    route: str
    handler: str
    took_ms: float | None  # from receipt to the recorded outcome; None while running
    answer: str  # passive, pushed, streamed, none or running
    retries: int  # WeCom's repeats absorbed
    outbox: tuple[OutboxStep, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def describe(message: Message) -> str:
    """A callback in a few words."""
    if isinstance(message, TextMessage):
        text = message.content if len(message.content) <= 60 else message.content[:57] + "..."
        return f"text {text!r}"
    if isinstance(message, Event):
        key = f" {message.event_key}" if message.event_key else ""
        return f"{message.event}{key}"
    return message.msg_type or "message"


def entry(
    record: InboxRecord,
    parse: Parse,
    resolve: Resolve,
    outbox: Iterable[OutboxItem],
    streamed: Collection[str] = (),
) -> TimelineEntry:
    """The timeline entry of one inbox record."""
    try:
        message: Message | None = parse(record)
    except (WecomError, ValueError):
        message = None
    found = resolve(message, record.app) if message is not None else None
    route, handler = ("(none)", "") if found is None else (_route(found[0]), found[0].name)
    done = record.state == DONE
    if not done:
        answer = "running"
    elif record.pushed:
        answer = "pushed"
    elif record.app in streamed and isinstance(message, TextMessage):
        answer = "streamed"  # an AI bot's answer: its stream, read by refreshes
    else:
        answer = "passive" if record.reply else "none"
    took = (record.finished_at - record.created_at) * 1000 if done and record.finished_at else None
    return TimelineEntry(
        key=record.key, app=record.app,
        member=message.from_user.lower() if message is not None else "",
        what=describe(message) if message is not None else "(unreadable)",
        received_at=record.created_at, state=record.state, owner=record.owner,
        attempts=record.attempts, route=route, handler=handler,
        took_ms=None if took is None else round(took, 1), answer=answer,
        retries=record.retries, outbox=tuple(OutboxStep.of(item) for item in outbox),
    )  # fmt: skip


def _route(route: Route) -> str:
    return route.describe().rsplit(" -> ", 1)[0]


def timeline(
    records: Iterable[InboxRecord],
    parse: Parse,
    resolve: Resolve,
    outbox_of: Callable[[str], list[OutboxItem]],
    bots: Collection[str] = (),
) -> list[TimelineEntry]:
    """Entries for the records given (newest first, as the store lists them); the text
    messages of `bots` are answered by streams."""
    return [entry(r, parse, resolve, outbox_of(r.key), bots) for r in records]


def dead_letters(items: Iterable[OutboxItem]) -> list[dict[str, Any]]:
    """Dead outbox items, for `wecom outbox retry|drop`."""
    return [asdict(OutboxStep.of(item)) | {"app": item.app} for item in items]
