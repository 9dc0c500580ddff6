"""Delivery: WeCom's 5-second attempts, the inbox claim, background work and recovery.

Every verified callback is claimed in the inbox before its handler runs, so WeCom's retries
never run a handler twice. What the member sees is exactly one reply, put where WeCom still
listens (docs/delivery.md has every case as a table, each row a test):

- a route's handler runs while the request waits for it, until its attempt's deadline
  (`attempt`): in time, its reply is passive; late, WeCom gets an empty 200 at the deadline
  and the reply is pushed through the outbox when ready;
- an attempt that reached us too late to wait on, a `background=True` route and a callback
  taken over from a dead process answer at once, and their reply is pushed;
- a retry of a finished callback gets the cached passive reply again; a retry of a running one
  gets an empty 200 and marks the record so that its reply is pushed, since WeCom has given up
  on the attempt that waits for it.

A maintenance thread renews the leases of running handlers, re-runs callbacks whose process
died (their lease expired), delivers the outbox and forgets old records. The threads are
`workers'`; the wait is `budget`'s; this module decides what runs, and records what came of it.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from callback.bots.replies import TemplateCardReply, for_app
from callback.config import Settings
from callback.context import CallbackLog, Context
from callback.delivery import budget
from callback.delivery.attempt import Attempt, Deadlines
from callback.delivery.outbox import Outbox
from callback.delivery.speeds import RouteSpeeds
from callback.delivery.upkeep import Upkeep
from callback.delivery.workers import Workers
from callback.inbound import messages
from callback.inbound.messages import Message
from callback.inbound.replies import TEXT_LIMIT_BYTES, Reply, TextReply, as_reply, joined
from callback.outbound import Message as Outbound
from callback.outbound.client import SendResult, WecomClient
from callback.router import Match, Route
from callback.store import Store
from callback.store.records import DONE, RUNNING, InboxRecord

log = logging.getLogger("wecom.delivery")
Resolver = Callable[[Message, str], "tuple[Route, Match] | None"]
#: How a channel (an AI bot, say) turns a stored plaintext into a message, and runs a route
#: off the request thread, recording its outcome.
Parse = Callable[[bytes], Message]
Run = Callable[[InboxRecord, Message, Route, Match], None]


class TaskQueue(Protocol):
    """Where background work goes when it leaves the web process (Celery, `queue = "celery"`)."""

    def run_callback(self, key: str, token: str) -> None:
        """Run the inbox record `key`, handed over to the queue under owner `token`."""

    def deliver(self, item_id: str) -> None:
        """Attempt the outbox item `item_id`."""

    def health(self) -> str:
        """'ok' when the broker answers."""


Via = Callable[[Callable[[], SendResult]], SendResult]


class _CallbackSender:
    """ctx.send for one callback: outbox items keyed by the callback, so a re-run adds none.
    `via` runs each send elsewhere (on a sender thread, for a handler on the request thread)."""

    def __init__(self, outbox: Outbox, key: str, via: Via | None = None) -> None:
        self.outbox = outbox
        self.key = key
        self.count = itertools.count()
        self.via = via
        self.sent = False

    def send(self, app: str, message: Outbound, to: Any, **options: Any) -> SendResult:
        self.sent = True
        item_id = f"{self.key}:send:{next(self.count)}"
        hook = options.pop("webhook", None)

        def send() -> SendResult:
            if hook is not None:
                return self.outbox.post(item_id, hook, message)  # type: ignore[arg-type]
            return self.outbox.send(item_id, app, message, to, **options)

        return send() if self.via is None else self.via(send)


class Delivery:
    """Runs routes for the receiver under the guarantees in the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: WecomClient,
        resolve: Resolver,
        *,
        clock: Callable[[], float] = time.time,
        queue: TaskQueue | None = None,
    ) -> None:
        server = settings.server
        self.budget_s = server.reply_budget_ms / 1000
        self.lease_s = float(server.lease_s)
        self.retention_s = float(server.inbox_retention_s)
        self.corp_ids = {name: app.corp_id for name, app in settings.apps.items()}
        self.store = store
        self.resolve = resolve
        self.clock = clock
        self.queue = queue  # set on web nodes of a Celery deployment: they only enqueue
        self.deadlines = Deadlines(self.budget_s)
        self.speeds = RouteSpeeds(self.budget_s)
        self.upkeep = Upkeep(self)
        self.workers = Workers(server.worker_threads, self.upkeep.maintain)
        kick = queue.deliver if queue is not None else self._kick
        self.outbox = Outbox(store, client, owner=lambda: self.owner, clock=clock, kick=kick)
        self.metrics = client.metrics
        self.channels: dict[str, tuple[Parse, Run]] = {}  # by app name; apps use the default

    def register(self, name: str, parse: Parse, run: Run) -> None:
        """Let records of `name` be parsed and run by another channel (an AI bot's)."""
        self.channels[name] = (parse, run)

    def _parse(self, record: InboxRecord) -> Message:
        channel = self.channels.get(record.app)
        return channel[0](record.plaintext) if channel else messages.parse(record.plaintext)

    def run_pushed(self, record: InboxRecord, message: Message, route: Route, match: Match) -> None:
        """An app's way to run a route off the request thread: its reply is pushed."""
        self.finish(record, message, self.invoke(record, message, route, match), push=True)

    # -- threads ---------------------------------------------------------------------------------

    @property
    def owner(self) -> str:
        """This process's name in the store (set when its threads start)."""
        return self.workers.owner

    def start(self) -> None:
        """Start this process's worker threads (again after a fork); cheap when running."""
        self.workers.start()

    def health(self) -> str:
        """'ok' when this process's workers run (the maintenance thread beats)."""
        if not self.workers.running_here:
            return "worker threads not started in this process"
        if self.workers.stopped.is_set():
            return "stopped"
        return self.queue.health() if self.queue is not None else "ok"

    def stop(self) -> None:
        """Stop the maintenance thread (handlers already running finish)."""
        self.workers.stop()

    # -- the request path ------------------------------------------------------------------------

    def attempt(self, arrived_at: float, timestamp: int | None) -> Attempt:
        """The attempt that reached us at `arrived_at`, sent at WeCom's `timestamp`."""
        return self.deadlines.attempt(arrived_at, timestamp)

    def answer(
        self,
        app: str,
        message: Message,
        as_json: bool,
        found: tuple[Route, Match] | None,
        attempt: Attempt | None = None,
    ) -> bytes | None:
        """Claim the callback and run its route; the passive reply plaintext, or None."""
        now = self.clock()
        attempt = attempt or Attempt(now, now + self.budget_s)
        record = self.claim(app, message, as_json=as_json, run=found is not None)
        key = record.key
        if not record.created:  # a retry: WeCom did not get (or did not wait for) our answer
            if record.state == DONE and not record.pushed:
                return record.reply  # the same passive reply again
            return None  # running: the claim marked it, so its reply is pushed when ready
        if found is None:
            log.debug("no route app=%s type=%s key=%s", app, message.kind, key)
            return None
        route, match = found
        if route.background or record.attempts > 1 or attempt.abandoned(now):
            if not route.background and record.attempts == 1:
                log.warning(
                    "callback app=%s key=%s came %.2f s before its attempt's deadline: too late "
                    "to wait on; answered at once, its reply will be pushed",
                    app, key, attempt.remaining(now),
                )  # fmt: skip
            self._spawn(record, message, route, match)
            return None
        if self.speeds.inline(route.name):
            return self._inline(record, message, route, match, attempt)
        return self._within(record, message, route, match, attempt.remaining(now))

    def _inline(
        self, record: InboxRecord, message: Message, route: Route, match: Match, attempt: Attempt
    ) -> bytes | None:
        """Run a route known to be fast on the request thread. Should it turn slow, its reply
        is pushed if it returns past the attempt's deadline (or after a retry came)."""
        with self.workers.holding(record.key):  # a lease renewed, should it run long
            reply = self.invoke(record, message, route, match, inline=True)
        late = attempt.remaining(self.clock()) < 0
        if late:
            log.warning(
                "handler %s returned after its attempt's deadline app=%s key=%s; its reply "
                "will be pushed", route.name, record.app, record.key,
            )  # fmt: skip
        return self.finish(record, message, reply, push=late)

    def claim(self, app: str, message: Message, *, as_json: bool, run: bool) -> InboxRecord:
        """Claim a callback in the inbox, once across threads, processes and hosts: running
        (leased by this process) if a route will `run`, else done at once. `created` tells
        the caller whether it is the first to see the callback; a retry is counted."""
        self.start()
        now = self.clock()
        key = f"{app}:{message.dedup_key}"
        state, lease = (RUNNING, now + self.lease_s) if run else (DONE, 0.0)
        record = self.store.inbox_claim(
            InboxRecord(
                key, app, message.plaintext, as_json, state, self.owner, lease, created_at=now
            )
        )
        if not record.created:
            log.info("retry absorbed app=%s key=%s state=%s", app, key, record.state)
            self.metrics.retry_absorbed(app)
        return record

    def spawn(self, record: InboxRecord, message: Message, route: Route, match: Match) -> None:
        """Run a claimed callback's route off the request thread (its channel's way)."""
        self._spawn(record, message, route, match)

    def run_queued(self, key: str, token: str) -> float | None:
        """A queue worker's part (see Upkeep.run_queued)."""
        return self.upkeep.run_queued(key, token)

    def channel_run(self, app: str) -> Run:
        """How a record of `app` is run off the request thread (its channel's way)."""
        return self.channels.get(app, (None, self.run_pushed))[1]

    def parse(self, record: InboxRecord) -> Message:
        """A stored record's message, parsed its channel's way."""
        return self._parse(record)

    def _within(
        self, record: InboxRecord, message: Message, route: Route, match: Match, wait_s: float
    ) -> bytes | None:
        in_time, reply = budget.within(
            wait_s,
            lambda: self.invoke(record, message, route, match),
            lambda job: self.workers.submit(record.key, job),
            lambda late: self.finish(record, message, late, push=True),
        )
        if not in_time:
            log.warning(
                "handler %s still running at its attempt's deadline (%.1f s) app=%s key=%s; "
                "its reply will be pushed",
                route.name, wait_s, record.app, record.key,
            )  # fmt: skip
            return None
        return self.finish(record, message, reply, push=False)

    def _spawn(self, record: InboxRecord, message: Message, route: Route, match: Match) -> None:
        if self.queue is not None:  # hand the claim to the queue; a worker takes it over
            token = f"queued:{uuid.uuid4().hex}"
            if self.store.inbox_transfer(record.key, self.owner, token, self.lease_s):
                self.queue.run_callback(record.key, token)
            return

        run = self.channel_run(record.app)
        self.workers.submit(record.key, lambda: run(record, message, route, match))

    def invoke(
        self,
        record: InboxRecord,
        message: Message,
        route: Route,
        match: Match,
        *,
        inline: bool = False,
        consume: Callable[[Any], Reply | None] | None = None,
        ctx: Context | None = None,
    ) -> Reply | None:
        """Run the handler (on the request thread if `inline`: its sends then go on a sender
        thread) and record its speed; an exception is logged with the callback's key and type.
        What it returns, or yields (a generator's pieces), becomes a reply: joined into one
        for an app, or through `consume` (an AI bot streams the pieces as they come)."""
        via = self.workers.on_sender if inline else None
        sender = _CallbackSender(self.outbox, record.key, via)
        if ctx is None:
            extra = {"app": record.app, "key": record.key}
            adapter = CallbackLog(logging.getLogger(route.handler.__module__), extra)
            ctx = Context(app=record.app, message=message, match=match, log=adapter, sender=sender)
        started = time.perf_counter()
        try:
            output = route.handler(message, ctx)
            if consume is not None:
                return consume(output)
            return for_app(as_reply(joined(output)))
        except Exception:
            log.exception(
                "handler %s failed app=%s type=%s key=%s",
                route.name, record.app, message.kind, record.key,
                extra={"wecom_key": record.key, "wecom_handler": route.name},
            )  # fmt: skip
            self.metrics.handler_error(record.app, route.name)
            return None
        finally:
            self.speeds.ran(route.name, time.perf_counter() - started, sender.sent)

    def finish(
        self, record: InboxRecord, message: Message, reply: Reply | None, *, push: bool
    ) -> bytes | None:
        """Record the outcome: a passive reply to cache (returned, for the waiting attempt), or
        a push through the outbox. A passive reply is cached only while no retry has marked the
        record; once one has, WeCom no longer listens to the waiting attempt, so it is pushed.
        On the request thread, pushing only stores the outbox item: sender threads send it."""
        if reply is None:
            self.store.inbox_finish(record.key, self.owner, None, pushed=False)
            return None
        if not push and not _fits_passive(reply):
            push = True  # WeCom would truncate a long passive text: send it whole instead
        if not push:
            corp_id = self.corp_ids[record.app]
            now = int(self.clock())
            plaintext = reply.render(message.from_user, corp_id, now, as_json=record.as_json)
            if self.store.inbox_finish(record.key, self.owner, plaintext, pushed=False):
                return plaintext
            current = self.store.inbox_get(record.key)
            if current is None or current.owner != self.owner or current.state != RUNNING:
                log.error("callback %s was taken over while its handler ran; reply dropped "
                          "here, the new owner answers", record.key)  # fmt: skip
                return None
            log.info("retry answered while %s ran: its reply is pushed", record.key)
        self.outbox.push_reply(f"{record.key}:reply", record.app, message, reply)
        self.store.inbox_finish(record.key, self.owner, None, pushed=True)
        return None

    def _kick(self, item_id: str) -> None:
        """Give a new outbox item its first attempt on a sender thread (never the caller's);
        with the send queue full, the maintenance pass takes it when there is room."""
        self.workers.send(self.outbox.deliver, item_id)


def _fits_passive(reply: Reply) -> bool:
    """Whether WeCom shows the reply whole as a passive reply: not a card message (passive
    replies have no such type), nor a text over 2048 bytes."""
    if isinstance(reply, TemplateCardReply):
        return False
    return not isinstance(reply, TextReply) or len(reply.content.encode()) <= TEXT_LIMIT_BYTES
