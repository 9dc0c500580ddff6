"""The durable records of delivery: inbox entries (one per callback) and outbox items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUNNING = "running"
DONE = "done"
PENDING = "pending"
DEAD = "dead"


@dataclass(frozen=True)
class InboxRecord:
    """One accepted callback: who runs it (owner, until lease_until) and what it answered."""

    key: str
    app: str
    plaintext: bytes
    as_json: bool
    state: str = RUNNING
    owner: str = ""
    lease_until: float = 0.0
    reply: bytes | None = None  # the passive reply plaintext, replayed to WeCom's retries
    #: The result goes through the send API: finished that way, or marked by a retry that came
    #: while the handler ran (WeCom no longer listens to the attempt waiting for it).
    pushed: bool = False
    attempts: int = 1
    created_at: float = 0.0
    #: When the outcome was recorded (`inbox_finish`); 0.0 while the handler runs.
    finished_at: float = 0.0
    #: WeCom's repeats of this callback that found the record (retries absorbed).
    retries: int = 0
    #: Set by `inbox_claim`: True for the caller that created the record.
    created: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class OutboxItem:
    """A logical send: the API bodies to deliver in order, and how far delivery got."""

    id: str  # the idempotency key: enqueuing the same id twice keeps one item
    app: str
    api: str  # "message/send" or "message/update_template_card"
    bodies: tuple[dict[str, Any], ...]
    parts_done: int = 0
    state: str = PENDING
    attempts: int = 0
    next_at: float = 0.0
    owner: str = ""
    lease_until: float = 0.0
    error: str = ""
    created_at: float = 0.0
    results: tuple[dict[str, Any], ...] = ()
