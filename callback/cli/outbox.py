"""`wecom outbox list|retry|drop`: what waits to be sent, what is dead and why; dead letters
retried or dropped by an operator. It works on the state store the server uses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

from callback.app import load_settings
from callback.delivery.outbox import UNSENDABLE
from callback.errors import WecomError
from callback.store import Store, open_store
from callback.store.records import DEAD, PENDING, OutboxItem


def _store(args: argparse.Namespace) -> Store:
    return open_store(load_settings(args.config).server.state)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(item: OutboxItem, now: float) -> str:
    """One item as a few lines: id, state, app, age, attempts, what it sends, and why."""
    what = f"{item.api}, {len(item.bodies)} part(s), {item.parts_done} sent"
    if item.bodies:
        first = item.bodies[0]
        to = first.get("touser") or first.get("to") or ",".join(first.get("userids", []))
        kind = first.get("msgtype") or first.get("reply") or "card update"
        what += f", {kind} to {to}"
    lines = [
        f"{item.id}",
        f"    {item.state} · app {item.app} · created {_ago(now - item.created_at)} ago · "
        f"{item.attempts} attempt(s)",
        f"    {what}",
    ]
    if item.state == PENDING and item.next_at > now:
        lines.append(f"    next attempt in {_ago(item.next_at - now)}")
    if item.error:
        lines.append(f"    why: {item.error}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    states = [DEAD] if args.dead else [PENDING, DEAD]
    items = _store(args).outbox_list(states, args.limit)
    if args.json:
        print(json.dumps([dataclasses.asdict(i) for i in items], ensure_ascii=False, indent=2))
        return 0
    now = time.time()
    for item in items:
        print(describe(item, now))
    dead = sum(1 for i in items if i.state == DEAD)
    print(f"{len(items)} item(s): {len(items) - dead} pending, {dead} dead")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    store = _store(args)
    item = store.outbox_get(args.id)
    if item is None:
        raise WecomError(f"no outbox item {args.id!r}; `wecom outbox list` shows them")
    if item.api == UNSENDABLE:
        raise WecomError(
            f"{args.id}: this reply has no send-API form ({item.error}); there is nothing to "
            "retry: drop it with `wecom outbox drop`"
        )
    if item.state != DEAD:
        raise WecomError(f"{args.id} is {item.state}, not dead: only dead items are retried")
    if "may have been delivered" in item.error:
        print(f"warning: {args.id} may already have reached the member; it is sent again")
    store.outbox_retry(args.id)
    print(f"{args.id}: pending again; a running server sends it within a second")
    return 0


def cmd_drop(args: argparse.Namespace) -> int:
    if not _store(args).outbox_drop(args.id):
        raise WecomError(
            f"{args.id}: not dropped: there is no such item, it was delivered, or a server is "
            "sending it right now (`wecom outbox list` shows what can be dropped)"
        )
    print(f"{args.id}: dropped")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    outbox = sub.add_parser("outbox", help="list, retry or drop outbox items (dead letters)")
    verbs = outbox.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser(
        "list", parents=[common], help="pending and dead items, oldest first"
    )
    listing.add_argument("--dead", action="store_true", help="dead items only")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(func=cmd_list)
    retry = verbs.add_parser("retry", parents=[common], help="send a dead item again")
    retry.add_argument("id")
    retry.set_defaults(func=cmd_retry)
    drop = verbs.add_parser("drop", parents=[common], help="forget a dead (or waiting) item")
    drop.add_argument("id")
    drop.set_defaults(func=cmd_drop)
