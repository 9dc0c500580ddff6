"""The Store contract: small atomic operations the token cache, rate windows and inbox build on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from callback.store.records import InboxRecord, OutboxItem

#: (window in seconds, most events allowed in it)
Limit = tuple[float, int]


class Store(ABC):
    """Shared state with atomic operations; every method is safe across threads (and, for
    the persistent backends, across processes)."""

    # -- values with an expiry (token cache) -----------------------------------------------------

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The value under `key`, or None if absent or expired."""

    @abstractmethod
    def put(self, key: str, value: str, ttl_s: float) -> None:
        """Store `value` under `key` for `ttl_s` seconds."""

    @abstractmethod
    def setdefault(self, key: str, value: str, ttl_s: float) -> str:
        """Atomically store `value` unless `key` holds an unexpired value; return what it holds."""

    @abstractmethod
    def delete_if(self, key: str, expected: str) -> bool:
        """Delete `key` only if it still holds `expected` (compare-and-delete)."""

    # -- locks with an expiry (single-flight refresh) ---------------------------------------------

    @abstractmethod
    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take lock `name` for `owner` unless someone else holds an unexpired one."""

    @abstractmethod
    def release(self, name: str, owner: str) -> None:
        """Release lock `name` if `owner` still holds it."""

    # -- sliding rate windows ------------------------------------------------------------------

    @abstractmethod
    def reserve(self, keys: Sequence[str], limits: Sequence[Limit], count: int = 1) -> float:
        """Record `count` events for every key if all stay within every limit; all or nothing.

        Returns 0.0 when recorded, else the seconds until the reservation could succeed.
        """

    # -- the inbox: one record per accepted callback --------------------------------------------

    @abstractmethod
    def inbox_claim(self, record: InboxRecord) -> InboxRecord:
        """Insert `record` unless its key exists; return the stored record, `created` set
        when this call inserted it. A running record whose lease expired is taken over
        (owner, lease and attempts updated) and returned with `created` set too. Any claim
        that finds the record running marks it `pushed`: a retry came, so WeCom no longer
        listens to an earlier attempt, and the reply must go through the send API. Every claim
        that finds the record counts one of its `retries`."""

    @abstractmethod
    def inbox_finish(self, key: str, owner: str, reply: bytes | None, pushed: bool) -> bool:
        """Mark the record done with its reply (and `finished_at`), if `owner` still holds it. A
        passive reply (`reply` set, `pushed` false) is refused once the record is marked
        `pushed`."""

    @abstractmethod
    def inbox_renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        """Extend the leases `owner` holds (a heartbeat for long handlers)."""

    @abstractmethod
    def inbox_transfer(self, key: str, from_owner: str, to_owner: str, lease_s: float) -> bool:
        """Hand a running record from `from_owner` to `to_owner` (a queue to its worker), with a
        fresh lease; False if `from_owner` no longer holds it."""

    @abstractmethod
    def inbox_expired(self, owner: str, lease_s: float, limit: int) -> list[InboxRecord]:
        """Take over up to `limit` running records whose lease expired (their process died)."""

    @abstractmethod
    def inbox_get(self, key: str) -> InboxRecord | None:
        """The record under `key`, if any."""

    @abstractmethod
    def inbox_recent(self, limit: int) -> list[InboxRecord]:
        """Up to `limit` records, newest first (for the sandbox console's timeline)."""

    @abstractmethod
    def inbox_purge(self, before: float) -> int:
        """Forget finished records created before `before`; returns how many."""

    # -- the outbox: sends that must happen, retried until they do ------------------------------

    @abstractmethod
    def outbox_add(self, item: OutboxItem) -> bool:
        """Enqueue `item` unless an item with its id exists; True if added."""

    @abstractmethod
    def outbox_claim(self, item_id: str, owner: str, lease_s: float) -> OutboxItem | None:
        """Lease one pending item by id (to deliver it now), if nobody holds it."""

    @abstractmethod
    def outbox_due(self, owner: str, lease_s: float, limit: int) -> list[OutboxItem]:
        """Lease up to `limit` pending items whose time has come (or whose lease expired)."""

    @abstractmethod
    def outbox_hold(self, item_id: str, owner: str, lease_s: float) -> bool:
        """Renew `owner`'s lease on a pending item; False if `owner` no longer holds it (the
        fence an attempt passes before each send, so two senders never send one item)."""

    @abstractmethod
    def outbox_save(self, item: OutboxItem) -> None:
        """Store progress of a leased item (state, parts_done, attempts, next_at, error)."""

    @abstractmethod
    def outbox_get(self, item_id: str) -> OutboxItem | None:
        """The item with this id, if any."""

    @abstractmethod
    def outbox_purge(self, before: float) -> int:
        """Forget delivered and dead items created before `before`, and any other expired
        bookkeeping; returns how many items."""

    @abstractmethod
    def outbox_depth(self) -> int:
        """How many items are pending."""

    @abstractmethod
    def outbox_list(self, states: Sequence[str], limit: int) -> list[OutboxItem]:
        """Up to `limit` items in `states`, oldest first (for operators: `wecom outbox list`)."""

    @abstractmethod
    def outbox_retry(self, item_id: str) -> bool:
        """Make a dead item pending again, due now, with a fresh count of attempts."""

    @abstractmethod
    def outbox_drop(self, item_id: str) -> bool:
        """Delete a dead item, or a pending one nobody is sending now; True if deleted."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release resources (connections)."""
