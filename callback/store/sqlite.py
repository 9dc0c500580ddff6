"""SqliteStore: state in one SQLite file (WAL), shared by every thread and process on a machine."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from callback.errors import Unavailable
from callback.store import sqlite_records as records
from callback.store.base import Limit, Store
from callback.store.records import DONE, RUNNING, InboxRecord, OutboxItem
from callback.store.windows import horizon, wait_needed

R = TypeVar("R")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_events (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_events_key_at ON rate_events (key, at);
"""


def _open(path: str) -> sqlite3.Connection:
    # timeout=0: no SQLite busy handler. Its sleeps start at a millisecond, long next to our
    # 30-50 us writes; _retry_locked waits in steps from 50 us instead.
    db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _retry_locked(action: Callable[[], R], path: str, patience_s: float = 30.0) -> R:
    """Run `action`, retrying while another connection holds the file's write lock ("locked" or
    "busy"), with short, growing, jittered waits; other errors, or 30 s of waiting, become
    Unavailable (a 503: WeCom retries). Also covers what no busy timeout covers: switching a
    new file to WAL when every gunicorn worker opens it at the same moment."""
    deadline = 0.0
    pause = 0.00005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "locked" not in message and "busy" not in message:
                raise Unavailable(f"state store {path}: {exc}") from exc
            now = time.monotonic()
            deadline = deadline or now + patience_s
            if now > deadline:
                raise Unavailable(f"state store {path}: {exc} for {patience_s:g} s") from exc
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 0.005)
        except sqlite3.Error as exc:
            raise Unavailable(f"state store {path}: {exc}") from exc


def _forked(store: SqliteStore | None) -> None:
    if store is not None:
        store._lock, store._db, store._pid = threading.RLock(), None, 0
        store._queue_lock, store._queue = threading.Lock(), []


class _Statement:
    """A write waiting for a group commit, and what came of it."""

    __slots__ = ("args", "done", "error", "rows", "sql")

    def __init__(self, sql: str, args: Sequence[Any]) -> None:
        self.sql, self.args = sql, args
        self.done = False
        self.rows = 0
        self.error: Unavailable | None = None

    def outcome(self) -> int:
        if self.error is not None:
            raise self.error
        return self.rows


class SqliteStore(Store):
    """One connection per process, its threads taking turns; writes in short IMMEDIATE
    transactions. Threads queue on a lock of their own rather than on SQLite's file lock: the
    file lock is then contended only by the other processes, and one connection keeps its page
    cache (per-thread connections spun on the file lock, and cost most of a callback's time
    under gunicorn's threaded worker)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        self.path = os.path.abspath(path)  # opened later in each forked process, from any cwd
        self.clock = clock
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._queue_lock = threading.Lock()
        self._queue: list[_Statement] = []  # statements waiting for a group commit
        ref = weakref.ref(self)  # a child forked while a thread held the lock gets a free one
        os.register_at_fork(after_in_child=lambda: _forked(ref()))
        _retry_locked(lambda: self._connection().executescript(SCHEMA + records.SCHEMA), path)
        _retry_locked(lambda: records.migrate(self._connection()), path)

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (call with the lock held, or before threads start)."""
        if self._db is None or self._pid != os.getpid():
            self._db = _retry_locked(lambda: _open(self.path), self.path)
            self._pid = os.getpid()
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            _retry_locked(lambda: db.execute("BEGIN IMMEDIATE"), self.path)  # the write lock
            try:
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                _retry_locked(lambda: db.execute("COMMIT"), self.path)
            except sqlite3.Error as exc:
                raise Unavailable(f"state store {self.path}: {exc}") from exc

    def get(self, key: str) -> str | None:
        sql = "SELECT value FROM kv WHERE key = ? AND expires_at > ?"
        row = self._read(lambda db: db.execute(sql, (key, self.clock())).fetchone())
        return None if row is None else str(row[0])

    def put(self, key: str, value: str, ttl_s: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                (key, value, self.clock() + ttl_s),
            )

    def setdefault(self, key: str, value: str, ttl_s: float) -> str:
        now = self.clock()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at WHERE kv.expires_at <= ?",
                (key, value, now + ttl_s, now),
            )
            row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            return str(row[0])

    def delete_if(self, key: str, expected: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM kv WHERE key = ? AND value = ?", (key, expected))
            return cursor.rowcount > 0

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        now = self.clock()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE locks.expires_at <= ? OR locks.owner = excluded.owner",
                (name, owner, now + ttl_s, now),
            )
            return cursor.rowcount > 0

    def release(self, name: str, owner: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    def reserve(self, keys: Sequence[str], limits: Sequence[Limit], count: int = 1) -> float:
        now = self.clock()
        keys = list(dict.fromkeys(keys))  # a member named twice counts once, as elsewhere
        with self._transaction() as db:
            db.executemany(  # only these keys: others may have longer windows
                "DELETE FROM rate_events WHERE key = ? AND at <= ?",
                [(key, now - horizon(limits)) for key in keys],
            )
            wait = 0.0
            for key in keys:
                rows = db.execute(
                    "SELECT at FROM rate_events WHERE key = ? ORDER BY at", (key,)
                ).fetchall()
                wait = max(wait, wait_needed([r[0] for r in rows], limits, count, now))
            if wait > 0:
                return wait
            db.executemany(
                "INSERT INTO rate_events (key, at) VALUES (?, ?)",
                [(key, now) for key in keys for _ in range(count)],
            )
            return 0.0

    # -- inbox -----------------------------------------------------------------------------------

    def _execute(self, sql: str, args: Sequence[Any]) -> int:
        """One writing statement, committed before it returns (the hot path: the inbox claim
        and outcome); how many rows it changed. Statements that this process's threads issue
        while another thread commits wait for it, then go in one transaction together (group
        commit): one turn of the file lock, and one re-read of pages another process changed,
        for all of them."""
        mine = _Statement(sql, args)
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            if mine.done:  # committed by the thread before us, with its own
                return mine.outcome()
            with self._queue_lock:
                batch, self._queue = self._queue, []
            try:
                if len(batch) == 1:  # alone: autocommit, no BEGIN and COMMIT
                    db = self._connection()
                    mine.rows = _retry_locked(lambda: db.execute(sql, args).rowcount, self.path)
                else:
                    with self._transaction() as db:
                        for statement in batch:
                            statement.rows = db.execute(statement.sql, statement.args).rowcount
            except Unavailable as exc:
                for statement in batch:
                    statement.error = exc
            for statement in batch:
                statement.done = True
        return mine.outcome()

    def inbox_claim(self, record: InboxRecord) -> InboxRecord:
        now = self.clock()
        row = records.inbox_row(record, now)
        if self._execute(records.INBOX_INSERT, row):
            r = record  # as stored, with its creation time: no dataclasses.replace on the hot path
            return InboxRecord(
                r.key, r.app, r.plaintext, r.as_json, r.state, r.owner, r.lease_until, r.reply,
                r.pushed, r.attempts, row[10], r.finished_at, r.retries, created=True,
            )  # fmt: skip
        with self._transaction() as db:
            return records.inbox_takeover(db, record, now)

    def inbox_finish(self, key: str, owner: str, reply: bytes | None, pushed: bool) -> bool:
        passive = reply is not None and not pushed
        args = (DONE, reply, int(pushed), self.clock(), key, owner, RUNNING, int(passive))
        return self._execute(records.INBOX_FINISH, args) > 0

    def inbox_renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        with self._transaction() as db:
            records.inbox_renew(db, keys, owner, self.clock() + lease_s)

    def inbox_transfer(self, key: str, from_owner: str, to_owner: str, lease_s: float) -> bool:
        args = (to_owner, self.clock() + lease_s, key, from_owner, RUNNING)
        sql = (
            "UPDATE inbox SET owner = ?, lease_until = ? WHERE key = ? AND owner = ? AND state = ?"
        )
        return self._execute(sql, args) > 0

    def inbox_expired(self, owner: str, lease_s: float, limit: int) -> list[InboxRecord]:
        now = self.clock()
        with self._transaction() as db:
            return records.inbox_expired(db, owner, now, now + lease_s, limit)

    def inbox_get(self, key: str) -> InboxRecord | None:
        return self._read(records.inbox_get, key)

    def inbox_recent(self, limit: int) -> list[InboxRecord]:
        return self._read(records.inbox_recent, max(limit, 0))

    def inbox_purge(self, before: float) -> int:
        with self._transaction() as db:
            return records.inbox_purge(db, before)

    # -- outbox ----------------------------------------------------------------------------------

    def outbox_add(self, item: OutboxItem) -> bool:
        with self._transaction() as db:
            return records.outbox_add(db, item, self.clock())

    def outbox_claim(self, item_id: str, owner: str, lease_s: float) -> OutboxItem | None:
        now = self.clock()
        with self._transaction() as db:
            ids = records.outbox_claimable(db, now, 1, item_id)
            leased = records.outbox_lease(db, ids, owner, now + lease_s)
        return leased[0] if leased else None

    def outbox_due(self, owner: str, lease_s: float, limit: int) -> list[OutboxItem]:
        now = self.clock()
        with self._transaction() as db:
            return records.outbox_lease(
                db, records.outbox_claimable(db, now, limit), owner, now + lease_s
            )

    def outbox_hold(self, item_id: str, owner: str, lease_s: float) -> bool:
        until = self.clock() + lease_s
        with self._transaction() as db:
            return records.outbox_hold(db, item_id, owner, until)

    def outbox_save(self, item: OutboxItem) -> None:
        with self._transaction() as db:
            records.outbox_save(db, item)

    def outbox_get(self, item_id: str) -> OutboxItem | None:
        return self._read(records.outbox_get, item_id)

    def outbox_purge(self, before: float) -> int:
        now = self.clock()
        with self._transaction() as db:
            db.execute("DELETE FROM kv WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM locks WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM rate_events WHERE at < ?", (before,))
            return records.outbox_purge(db, before)

    def outbox_depth(self) -> int:
        return self._read(records.outbox_depth)

    def outbox_list(self, states: Sequence[str], limit: int) -> list[OutboxItem]:
        return self._read(records.outbox_list, states, limit)

    def outbox_retry(self, item_id: str) -> bool:
        with self._transaction() as db:
            return records.outbox_retry(db, item_id, self.clock())

    def outbox_drop(self, item_id: str) -> bool:
        with self._transaction() as db:
            return records.outbox_drop(db, item_id, self.clock())

    def _read(self, query: Callable[..., R], *args: Any) -> R:
        """A read: no file lock (WAL readers see the last commit); done with the results
        before another thread of this process uses the connection."""
        with self._lock:
            db = self._connection()
            return _retry_locked(lambda: query(db, *args), self.path)

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None
