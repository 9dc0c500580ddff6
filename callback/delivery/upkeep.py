"""Upkeep: what keeps delivery's promises off the request path.

A maintenance pass in every process renews the leases of the handlers it runs, re-runs
callbacks whose process died (their lease ran out), gives due outbox items their attempts and
forgets old records; a queue worker (Celery) takes a handed-over callback and runs it here.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from callback.errors import WecomError
from callback.store.records import DONE

if TYPE_CHECKING:
    from callback.delivery.runner import Delivery

log = logging.getLogger("wecom.delivery")


class Upkeep:
    """The upkeep of one Delivery."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    def run_queued(self, key: str, token: str) -> float | None:
        """A queue worker's part: take the record over from `token` and run it here, pushing
        its result. Returns None when the record is done (by us or anyone), or the seconds to
        wait before trying again while another live owner holds it."""
        d = self.delivery
        d.start()
        record = d.store.inbox_get(key)
        if record is None or record.state == DONE:
            return None
        if not d.store.inbox_transfer(key, token, d.owner, d.lease_s):
            remaining = record.lease_until - d.clock()
            if remaining > 0:
                return max(remaining, 0.5)  # a live owner (or the dead one's lease) holds it
            lease = d.clock() + d.lease_s
            record = d.store.inbox_claim(replace(record, owner=d.owner, lease_until=lease))
            if not record.created:
                return None if record.state == DONE else d.lease_s
        record = replace(record, owner=d.owner)
        try:
            message = d.parse(record)
        except WecomError as exc:
            log.error("cannot run %s: %s", key, exc)
            d.store.inbox_finish(key, d.owner, None, pushed=False)
            return None
        found = d.resolve(message, record.app)
        with d.workers.holding(key):
            if found is None:
                d.finish(record, message, None, push=True)
            else:
                d.channel_run(record.app)(record, message, *found)
        return None

    def maintain(self, last: dict[str, float]) -> None:
        """One maintenance pass: heartbeats, recovery, outbox, purge (each on its own period)."""
        d = self.delivery
        now = d.clock()
        if now - last.get("renew", 0) >= d.lease_s / 3:
            keys = d.workers.held()
            if keys:
                d.store.inbox_renew(keys, d.owner, d.lease_s)
            last["renew"] = now
        if d.queue is not None:
            return  # recovery, retries and purging are the queue workers' (they run maintain too)
        if now - last.get("recover", 0) >= min(d.lease_s / 2, 5.0):
            self.recover()
            last["recover"] = now
        room = d.workers.send_room()
        if room:
            for item in d.outbox.due(limit=room):
                d.workers.send(d.outbox.attempt, item)
        if now - last.get("purge", 0) >= 3600:
            d.store.inbox_purge(now - d.retention_s)
            d.store.outbox_purge(now - d.retention_s)
            last["purge"] = now

    def recover(self) -> int:
        """Re-run callbacks whose handler never finished (the process died); their results are
        pushed. Returns how many were taken over."""
        d = self.delivery
        records = d.store.inbox_expired(d.owner, d.lease_s, limit=16)
        for record in records:
            try:
                message = d.parse(record)
                found = d.resolve(message, record.app)
            except WecomError as exc:
                log.error("cannot recover %s: %s", record.key, exc)
                d.store.inbox_finish(record.key, d.owner, None, pushed=False)
                continue
            if found is None:
                d.store.inbox_finish(record.key, d.owner, None, pushed=False)
                continue
            log.warning("recovering callback %s (attempt %d)", record.key, record.attempts)
            d.spawn(record, message, *found)
        return len(records)
