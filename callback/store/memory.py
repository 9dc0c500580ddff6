"""MemoryStore: one process's state in dicts under a lock (unit tests, `memory://`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from callback.store.base import Limit, Store
from callback.store.records import DEAD, DONE, PENDING, RUNNING, InboxRecord, OutboxItem
from callback.store.windows import horizon, wait_needed


class MemoryStore(Store):
    """Not shared between processes; otherwise the same guarantees as the SQLite store."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._events: dict[str, list[float]] = {}
        self._inbox: dict[str, InboxRecord] = {}
        self._outbox: dict[str, OutboxItem] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._values.get(key)
            if item is None or item[1] <= self.clock():
                return None
            return item[0]

    def put(self, key: str, value: str, ttl_s: float) -> None:
        with self._lock:
            self._values[key] = (value, self.clock() + ttl_s)

    def setdefault(self, key: str, value: str, ttl_s: float) -> str:
        with self._lock:
            now = self.clock()
            item = self._values.get(key)
            if item is not None and item[1] > now:
                return item[0]
            self._values[key] = (value, now + ttl_s)
            return value

    def delete_if(self, key: str, expected: str) -> bool:
        with self._lock:
            item = self._values.get(key)
            if item is None or item[0] != expected:
                return False
            del self._values[key]
            return True

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            now = self.clock()
            held = self._locks.get(name)
            if held is not None and held[1] > now and held[0] != owner:
                return False
            self._locks[name] = (owner, now + ttl_s)
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            if self._locks.get(name, ("", 0.0))[0] == owner:
                del self._locks[name]

    def reserve(self, keys: Sequence[str], limits: Sequence[Limit], count: int = 1) -> float:
        with self._lock:
            now = self.clock()
            oldest = now - horizon(limits)
            histories = {k: [t for t in self._events.get(k, []) if t > oldest] for k in keys}
            wait = max((wait_needed(h, limits, count, now) for h in histories.values()), default=0)
            if wait > 0:
                return wait
            for key, history in histories.items():
                self._events[key] = history + [now] * count
            return 0.0

    # -- inbox -----------------------------------------------------------------------------------

    def inbox_claim(self, record: InboxRecord) -> InboxRecord:
        with self._lock:
            existing = self._inbox.get(record.key)
            if existing is None:
                stored = replace(record, created_at=record.created_at or self.clock())
            elif existing.state == RUNNING and existing.lease_until <= self.clock():
                stored = replace(
                    existing,
                    owner=record.owner,
                    lease_until=record.lease_until,
                    attempts=existing.attempts + 1,
                    pushed=True,
                    retries=existing.retries + 1,
                )
            elif existing.state == RUNNING:
                existing = replace(existing, pushed=True, retries=existing.retries + 1)
                self._inbox[record.key] = existing
                return existing
            else:
                self._inbox[record.key] = replace(existing, retries=existing.retries + 1)
                return replace(existing, retries=existing.retries + 1, created=False)
            self._inbox[record.key] = replace(stored, created=False)
            return replace(stored, created=True)

    def inbox_finish(self, key: str, owner: str, reply: bytes | None, pushed: bool) -> bool:
        with self._lock:
            record = self._inbox.get(key)
            if record is None or record.owner != owner or record.state != RUNNING:
                return False
            if record.pushed and reply is not None and not pushed:
                return False  # a retry came meanwhile: this reply must be pushed instead
            self._inbox[key] = replace(
                record, state=DONE, reply=reply, pushed=pushed, finished_at=self.clock()
            )
            return True

    def inbox_recent(self, limit: int) -> list[InboxRecord]:
        with self._lock:
            records = sorted(self._inbox.values(), key=lambda r: r.created_at, reverse=True)
        return records[: max(limit, 0)]

    def inbox_renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        with self._lock:
            until = self.clock() + lease_s
            for key in keys:
                record = self._inbox.get(key)
                if record is not None and record.owner == owner and record.state == RUNNING:
                    self._inbox[key] = replace(record, lease_until=until)

    def inbox_transfer(self, key: str, from_owner: str, to_owner: str, lease_s: float) -> bool:
        with self._lock:
            record = self._inbox.get(key)
            if record is None or record.owner != from_owner or record.state != RUNNING:
                return False
            until = self.clock() + lease_s
            self._inbox[key] = replace(record, owner=to_owner, lease_until=until)
            return True

    def inbox_expired(self, owner: str, lease_s: float, limit: int) -> list[InboxRecord]:
        with self._lock:
            now = self.clock()
            taken: list[InboxRecord] = []
            for key, record in list(self._inbox.items()):
                if len(taken) >= limit:
                    break
                if record.state == RUNNING and record.lease_until <= now:
                    record = replace(
                        record, owner=owner, lease_until=now + lease_s, attempts=record.attempts + 1
                    )
                    self._inbox[key] = record
                    taken.append(record)
            return taken

    def inbox_get(self, key: str) -> InboxRecord | None:
        with self._lock:
            return self._inbox.get(key)

    def inbox_purge(self, before: float) -> int:
        with self._lock:
            old = [k for k, r in self._inbox.items() if r.state == DONE and r.created_at < before]
            for key in old:
                del self._inbox[key]
            return len(old)

    # -- outbox ----------------------------------------------------------------------------------

    def outbox_add(self, item: OutboxItem) -> bool:
        with self._lock:
            if item.id in self._outbox:
                return False
            self._outbox[item.id] = replace(item, created_at=item.created_at or self.clock())
            return True

    def _lease(self, item: OutboxItem, owner: str, lease_s: float) -> OutboxItem:
        leased = replace(item, owner=owner, lease_until=self.clock() + lease_s)
        self._outbox[item.id] = leased
        return leased

    def outbox_claim(self, item_id: str, owner: str, lease_s: float) -> OutboxItem | None:
        with self._lock:
            item = self._outbox.get(item_id)
            if item is None or item.state != PENDING or item.lease_until > self.clock():
                return None
            return self._lease(item, owner, lease_s)

    def outbox_due(self, owner: str, lease_s: float, limit: int) -> list[OutboxItem]:
        with self._lock:
            now = self.clock()
            due = sorted(
                (i for i in self._outbox.values()
                 if i.state == PENDING and i.next_at <= now and i.lease_until <= now),
                key=lambda i: (i.next_at, i.created_at),
            )  # fmt: skip
            return [self._lease(item, owner, lease_s) for item in due[:limit]]

    def outbox_hold(self, item_id: str, owner: str, lease_s: float) -> bool:
        with self._lock:
            item = self._outbox.get(item_id)
            if item is None or item.owner != owner or item.state != PENDING:
                return False
            self._lease(item, owner, lease_s)
            return True

    def outbox_save(self, item: OutboxItem) -> None:
        with self._lock:
            current = self._outbox.get(item.id)
            if current is not None and current.owner == item.owner:
                self._outbox[item.id] = replace(item, lease_until=0.0)

    def outbox_get(self, item_id: str) -> OutboxItem | None:
        with self._lock:
            return self._outbox.get(item_id)

    def outbox_purge(self, before: float) -> int:
        with self._lock:
            old = [
                i.id
                for i in self._outbox.values()
                if i.state in (DONE, DEAD) and i.created_at < before
            ]
            for item_id in old:
                del self._outbox[item_id]
            now = self.clock()
            for key in [k for k, (_, expires) in self._values.items() if expires <= now]:
                del self._values[key]
            return len(old)

    def outbox_depth(self) -> int:
        with self._lock:
            return sum(1 for i in self._outbox.values() if i.state == PENDING)

    def outbox_list(self, states: Sequence[str], limit: int) -> list[OutboxItem]:
        with self._lock:
            items = [i for i in self._outbox.values() if i.state in states]
            return sorted(items, key=lambda i: (i.created_at, i.id))[:limit]

    def outbox_retry(self, item_id: str) -> bool:
        with self._lock:
            item = self._outbox.get(item_id)
            if item is None or item.state != DEAD:
                return False
            self._outbox[item_id] = replace(
                item, state=PENDING, attempts=0, next_at=self.clock(), lease_until=0.0
            )
            return True

    def outbox_drop(self, item_id: str) -> bool:
        with self._lock:
            item = self._outbox.get(item_id)
            if item is None or item.state == DONE:
                return False
            if item.state == PENDING and item.lease_until > self.clock():
                return False  # being sent right now
            del self._outbox[item_id]
            return True
