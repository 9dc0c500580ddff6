"""SQL for SqliteStore's inbox and outbox tables; each function runs in the caller's transaction.

Queries interpolate only the column lists below (constants); every value is a bound parameter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from callback.store.records import DEAD, DONE, PENDING, RUNNING, InboxRecord, OutboxItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    key TEXT PRIMARY KEY, app TEXT NOT NULL, plaintext BLOB NOT NULL, as_json INTEGER NOT NULL,
    state TEXT NOT NULL, owner TEXT NOT NULL, lease_until REAL NOT NULL, reply BLOB,
    pushed INTEGER NOT NULL, attempts INTEGER NOT NULL, created_at REAL NOT NULL,
    finished_at REAL NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_state_lease ON inbox (state, lease_until);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, app TEXT NOT NULL, api TEXT NOT NULL, bodies TEXT NOT NULL,
    parts_done INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    next_at REAL NOT NULL, owner TEXT NOT NULL, lease_until REAL NOT NULL, error TEXT NOT NULL,
    created_at REAL NOT NULL, results TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""

_INBOX = (
    "key, app, plaintext, as_json, state, owner, lease_until, reply, pushed, attempts, created_at, "
    "finished_at, retries"
)
#: Columns added after the first release, for files made before them (name, definition).
_ADDED = (
    ("finished_at", "REAL NOT NULL DEFAULT 0"),
    ("retries", "INTEGER NOT NULL DEFAULT 0"),
)
_OUTBOX = (
    "id, app, api, bodies, parts_done, state, attempts, next_at, owner, lease_until, error, "
    "created_at, results"
)


def _inbox(row: Sequence[Any], created: bool = False) -> InboxRecord:
    return InboxRecord(
        key=row[0], app=row[1], plaintext=bytes(row[2]), as_json=bool(row[3]), state=row[4],
        owner=row[5], lease_until=row[6], reply=None if row[7] is None else bytes(row[7]),
        pushed=bool(row[8]), attempts=row[9], created_at=row[10], finished_at=row[11],
        retries=row[12], created=created,
    )  # fmt: skip


def _outbox(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        id=row[0], app=row[1], api=row[2], bodies=tuple(json.loads(row[3])), parts_done=row[4],
        state=row[5], attempts=row[6], next_at=row[7], owner=row[8], lease_until=row[9],
        error=row[10], created_at=row[11], results=tuple(json.loads(row[12])),
    )  # fmt: skip


def inbox_get(db: sqlite3.Connection, key: str) -> InboxRecord | None:
    row = db.execute(f"SELECT {_INBOX} FROM inbox WHERE key = ?", (key,)).fetchone()
    return None if row is None else _inbox(row)


INBOX_INSERT = f"INSERT OR IGNORE INTO inbox ({_INBOX}) VALUES ({', '.join('?' * 13)})"


def migrate(db: sqlite3.Connection) -> None:
    """Add the columns a state file made by an older version lacks (another process may be
    adding them at the same moment: a duplicate column is fine)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(inbox)")}
    for name, definition in _ADDED:
        if name not in present:
            try:
                db.execute(f"ALTER TABLE inbox ADD COLUMN {name} {definition}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise


def inbox_row(r: InboxRecord, now: float) -> tuple[Any, ...]:
    """The values of INBOX_INSERT for a new record."""
    return (r.key, r.app, r.plaintext, int(r.as_json), r.state, r.owner, r.lease_until, r.reply,
            int(r.pushed), r.attempts, r.created_at or now, r.finished_at, r.retries)  # fmt: skip


def inbox_takeover(db: sqlite3.Connection, r: InboxRecord, now: float) -> InboxRecord:
    """The key exists: take it over if its owner's lease ran out, and return what is stored;
    a running record is marked pushed either way (see Store.inbox_claim)."""
    took = db.execute(
        "UPDATE inbox SET owner = ?, lease_until = ?, attempts = attempts + 1, pushed = 1, "
        "retries = retries + 1 WHERE key = ? AND state = ? AND lease_until <= ?",
        (r.owner, r.lease_until, r.key, RUNNING, now),
    ).rowcount
    if not took:
        db.execute(
            "UPDATE inbox SET retries = retries + 1, "
            "pushed = CASE WHEN state = ? THEN 1 ELSE pushed END WHERE key = ?",
            (RUNNING, r.key),
        )
    stored = inbox_get(db, r.key)
    if stored is None:  # purged meanwhile: claim it anew
        db.execute(INBOX_INSERT, inbox_row(r, now))
        return replace(r, created_at=r.created_at or now, created=True)
    return replace(stored, created=bool(took))


#: The last value is 1 for a passive reply, which a record marked pushed refuses.
INBOX_FINISH = (
    "UPDATE inbox SET state = ?, reply = ?, pushed = ?, finished_at = ? "
    "WHERE key = ? AND owner = ? AND state = ? AND (pushed = 0 OR ? = 0)"
)


def inbox_renew(db: sqlite3.Connection, keys: Sequence[str], owner: str, until: float) -> None:
    db.executemany(
        "UPDATE inbox SET lease_until = ? WHERE key = ? AND owner = ? AND state = ?",
        [(until, key, owner, RUNNING) for key in keys],
    )


def inbox_expired(
    db: sqlite3.Connection, owner: str, now: float, until: float, limit: int
) -> list[InboxRecord]:
    keys = [
        row[0]
        for row in db.execute(
            "SELECT key FROM inbox WHERE state = ? AND lease_until <= ? LIMIT ?",
            (RUNNING, now, limit),
        )
    ]
    db.executemany(
        "UPDATE inbox SET owner = ?, lease_until = ?, attempts = attempts + 1 WHERE key = ?",
        [(owner, until, key) for key in keys],
    )
    return [r for r in (inbox_get(db, key) for key in keys) if r is not None]


def inbox_recent(db: sqlite3.Connection, limit: int) -> list[InboxRecord]:
    # insertion order is claim order: the rowid walks it backwards with no index to keep up on
    # the hot path (a created_at index would cost every claim a third b-tree write)
    rows = db.execute(f"SELECT {_INBOX} FROM inbox ORDER BY rowid DESC LIMIT ?", (limit,))
    return [_inbox(row) for row in rows]


def inbox_purge(db: sqlite3.Connection, before: float) -> int:
    return db.execute(
        "DELETE FROM inbox WHERE state = ? AND created_at < ?", (DONE, before)
    ).rowcount


def outbox_add(db: sqlite3.Connection, item: OutboxItem, now: float) -> bool:
    return bool(
        db.execute(
            f"INSERT OR IGNORE INTO outbox ({_OUTBOX}) VALUES ({', '.join('?' * 13)})",
            _outbox_values(replace(item, created_at=item.created_at or now)),
        ).rowcount
    )


def _outbox_values(i: OutboxItem) -> tuple[Any, ...]:
    return (
        i.id, i.app, i.api, json.dumps(i.bodies, ensure_ascii=False), i.parts_done, i.state,
        i.attempts, i.next_at, i.owner, i.lease_until, i.error, i.created_at,
        json.dumps(i.results, ensure_ascii=False),
    )  # fmt: skip


def outbox_get(db: sqlite3.Connection, item_id: str) -> OutboxItem | None:
    row = db.execute(f"SELECT {_OUTBOX} FROM outbox WHERE id = ?", (item_id,)).fetchone()
    return None if row is None else _outbox(row)


def outbox_lease(
    db: sqlite3.Connection, ids: Sequence[str], owner: str, until: float
) -> list[OutboxItem]:
    db.executemany(
        "UPDATE outbox SET owner = ?, lease_until = ? WHERE id = ?",
        [(owner, until, item_id) for item_id in ids],
    )
    return [i for i in (outbox_get(db, item_id) for item_id in ids) if i is not None]


def outbox_claimable(
    db: sqlite3.Connection, now: float, limit: int, item_id: str | None = None
) -> list[str]:
    if item_id is not None:
        query = "SELECT id FROM outbox WHERE state = ? AND lease_until <= ? AND id = ? LIMIT ?"
        args: tuple[Any, ...] = (PENDING, now, item_id, limit)
    else:
        query = (
            "SELECT id FROM outbox WHERE state = ? AND lease_until <= ? AND next_at <= ? "
            "ORDER BY next_at, created_at LIMIT ?"
        )
        args = (PENDING, now, now, limit)
    return [row[0] for row in db.execute(query, args)]


def outbox_hold(db: sqlite3.Connection, item_id: str, owner: str, until: float) -> bool:
    return bool(
        db.execute(
            "UPDATE outbox SET lease_until = ? WHERE id = ? AND owner = ? AND state = ?",
            (until, item_id, owner, PENDING),
        ).rowcount
    )


def outbox_save(db: sqlite3.Connection, item: OutboxItem) -> None:
    db.execute(
        "UPDATE outbox SET parts_done = ?, state = ?, attempts = ?, next_at = ?, lease_until = 0, "
        "error = ?, results = ? WHERE id = ? AND owner = ?",
        (item.parts_done, item.state, item.attempts, item.next_at, item.error,
         json.dumps(item.results, ensure_ascii=False), item.id, item.owner),
    )  # fmt: skip


def outbox_depth(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM outbox WHERE state = ?", (PENDING,)).fetchone()[0])


def outbox_purge(db: sqlite3.Connection, before: float) -> int:
    return db.execute(
        "DELETE FROM outbox WHERE state IN (?, ?) AND created_at < ?", (DONE, DEAD, before)
    ).rowcount


def outbox_list(db: sqlite3.Connection, states: Sequence[str], limit: int) -> list[OutboxItem]:
    marks = ", ".join("?" * len(states))
    rows = db.execute(
        f"SELECT {_OUTBOX} FROM outbox WHERE state IN ({marks}) ORDER BY created_at, id LIMIT ?",
        (*states, limit),
    )
    return [_outbox(row) for row in rows]


def outbox_retry(db: sqlite3.Connection, item_id: str, now: float) -> bool:
    return bool(
        db.execute(
            "UPDATE outbox SET state = ?, attempts = 0, next_at = ?, lease_until = 0 "
            "WHERE id = ? AND state = ?",
            (PENDING, now, item_id, DEAD),
        ).rowcount
    )


def outbox_drop(db: sqlite3.Connection, item_id: str, now: float) -> bool:
    return bool(
        db.execute(
            "DELETE FROM outbox WHERE id = ? AND (state = ? OR (state = ? AND lease_until <= ?))",
            (item_id, DEAD, PENDING, now),
        ).rowcount
    )
