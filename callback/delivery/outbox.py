"""Outbox: sends that must happen (pushed replies, handler sends), retried until they do, and
never delivered twice.

An item is stored before its first attempt, under an idempotency key derived from the callback
that caused it, so a handler re-run after a crash enqueues nothing new. Each attempt holds a
lease of its own and re-checks it before every request (a fence), so two senders never send
one item. Failures where WeCom surely did nothing (no connection, a busy errcode) back off and
try again (capped, jittered); a request WeCom never answered may have been delivered, so it is
sent again only with WeCom's duplicate check on it, inside the check's interval; otherwise the
item is kept dead. A member's full rate window waits instead of failing. Nothing is dropped
silently: an item that cannot go (or a reply with no send-API form) is kept `dead`, logged,
and listed by `wecom outbox list` for an operator to retry or drop.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from callback import errcodes
from callback.bots.replies import TemplateCardReply
from callback.errors import (
    ApiError,
    LeaseLost,
    NoAnswer,
    RateLimited,
    Unreachable,
    ValidationError,
    WecomError,
)
from callback.inbound.messages import Message, TemplateCardMenuEvent
from callback.inbound.replies import (
    ImageReply,
    NewsReply,
    Reply,
    TextReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from callback.outbound import (
    Image,
    News,
    NewsArticle,
    Recipients,
    TemplateCard,
    Text,
    UpdateTemplateCard,
    Video,
    Voice,
)
from callback.outbound import Message as Outbound
from callback.outbound.client import RETRY_HORIZON_S, SendResult, WecomClient, recipients_of
from callback.outbound.webhooks import (
    WebhookClient,
    WebhookMarkdown,
    WebhookMessage,
)
from callback.store import Store
from callback.store.records import DEAD, DONE, PENDING, OutboxItem

log = logging.getLogger("wecom.outbox")

SEND = "message/send"
UPDATE_CARD = "message/update_template_card"
RESPONSE_URL = "aibot/response"  # an AI bot's response_url: bodies are {"url", "body"}
WEBHOOK = "webhook/send"  # a group robot: bodies are {"hook", "body"}
SEND_MSG = "aibot_send_msg"  # an AI bot's long connection: bodies are {"bot", "body"}
#: The api of a dead letter kept for a reply that has no send-API form (nothing to retry).
UNSENDABLE = "unsendable"
#: A request WeCom did not answer is sent again only this long before its duplicate check's
#: interval ends (counted from the item's creation, at or before its first attempt).
CHECK_MARGIN_S = 60.0
#: Worth another try later: WeCom busy or limiting, or this server's IP not yet trusted (an
#: admin adds it; it takes a minute). A wrong secret is not retried: repeated wrong secrets
#: get the server's IP blocked for an hour. Such items are kept, dead, and logged.
RETRY_LATER = errcodes.TRANSIENT | {60020}


@dataclass(frozen=True)
class OutboxPolicy:
    """Backoff between attempts, how long an item may keep trying, and the lease per attempt."""

    base_s: float = 1.0
    cap_s: float = 300.0
    max_age_s: float = RETRY_HORIZON_S
    lease_s: float = 60.0  # renewed by the fence before each request (13 s at most)

    def delay(self, attempts: int) -> float:
        return float(min(self.cap_s, self.base_s * 2.0 ** min(attempts, 20))) * random.uniform(
            0.5, 1.0
        )


class Outbox:
    """Enqueues and delivers OutboxItems through the client."""

    def __init__(
        self,
        store: Store,
        client: WecomClient,
        *,
        owner: Callable[[], str],
        policy: OutboxPolicy = OutboxPolicy(),
        clock: Callable[[], float] = time.time,
        kick: Callable[[str], object] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.kick = kick or self.deliver  # how a new item gets its first attempt
        self.owner = owner
        self.policy = policy
        self.clock = clock
        self.webhooks: WebhookClient | None = None  # group robots, set by create_app
        self.connections: Any = None  # AI bots' long connections (aibot_send_msg), likewise

    # -- enqueueing ------------------------------------------------------------------------------

    def add(self, item_id: str, app: str, api: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Store an item (once per id) due now."""
        self.store.outbox_add(OutboxItem(item_id, app, api, tuple(bodies), next_at=self.clock()))

    def send(
        self, item_id: str, app: str, message: Outbound, to: Any, **options: Any
    ) -> SendResult:
        """Enqueue and try at once: the result, or a `queued` result if it must wait or retry."""
        self.add(item_id, app, SEND, self.client.bodies(app, message, to, **options))
        claimed = self.store.outbox_claim(item_id, self._lease_owner(), self.policy.lease_s)
        item, error = self._attempt(claimed) if claimed else (self.store.outbox_get(item_id), None)
        if item is not None and item.state == DONE and item.results:  # (perhaps by an earlier run)
            msgids = [str(r.get("msgid", "")) for r in item.results]
            return SendResult.of(item.results[0], msgids)
        if item is not None and item.state == DEAD:
            raise error or WecomError(f"send {item_id} failed: {item.error}")
        return SendResult(msgid="", queued=True)

    def post(self, item_id: str, hook: str, message: WebhookMessage) -> SendResult:
        """Enqueue a group-robot post (a long markdown in parts) and try it at once; the
        robot's 20-a-minute window is waited for, never failed."""
        if self.webhooks is None:
            raise WecomError("no group robots are configured")
        self.webhooks.hook(hook)  # a ConfigError naming the known ones, before anything is stored
        parts = message.parts() if isinstance(message, WebhookMarkdown) else [message]
        bodies = [{"hook": hook, "body": part.body()} for part in parts]
        self.add(item_id, hook, WEBHOOK, bodies)
        claimed = self.store.outbox_claim(item_id, self._lease_owner(), self.policy.lease_s)
        item, error = self._attempt(claimed) if claimed else (self.store.outbox_get(item_id), None)
        if item is not None and item.state == DEAD:
            raise error or WecomError(f"post {item_id} failed: {item.error}")
        return SendResult(msgid="", queued=item is None or item.state != DONE)

    def push_reply(self, item_id: str, app: str, message: Message, reply: Reply) -> None:
        """Enqueue a handler's reply for the send API (it was late, or had to be), then try it."""
        try:
            api, bodies = self._reply_bodies(app, message, reply)
        except (ValidationError, ValueError) as exc:
            log.error(
                "outbox %s: the reply to %s has no send-API form (%s); kept as a dead letter",
                item_id, message.from_user, exc,
            )  # fmt: skip
            kept = {"reply": type(reply).__name__, "to": message.from_user, "value": repr(reply)}
            self.store.outbox_add(
                OutboxItem(item_id, app, UNSENDABLE, (kept,), state=DEAD, attempts=0,
                           next_at=self.clock(), error=f"cannot be pushed: {exc}")
            )  # fmt: skip
            return
        self.add(item_id, app, api, bodies)
        self.kick(item_id)

    def _reply_bodies(
        self, app: str, message: Message, reply: Reply
    ) -> tuple[str, tuple[dict[str, Any], ...]]:
        member = [message.from_user]
        if isinstance(reply, UpdateButtonReply | UpdateTemplateCardReply):
            if not isinstance(message, TemplateCardMenuEvent) or not message.response_code:
                raise ValueError("a card update needs the callback's ResponseCode")
            update = (
                UpdateTemplateCard(
                    message.response_code, replace_name=reply.replace_name, users=member
                )
                if isinstance(reply, UpdateButtonReply)
                else UpdateTemplateCard(message.response_code, card=dict(reply.card), users=member)
            )
            return UPDATE_CARD, (update.body(self.client.app(app).agent_id),)
        outbound: Outbound
        if isinstance(reply, TextReply):
            outbound = Text(reply.content)
        elif isinstance(reply, ImageReply):
            outbound = Image(reply.media_id)
        elif isinstance(reply, VoiceReply):
            outbound = Voice(reply.media_id)
        elif isinstance(reply, VideoReply):
            outbound = Video(reply.media_id, reply.title, reply.description)
        elif isinstance(reply, TemplateCardReply):
            outbound = TemplateCard(reply.card)
        elif isinstance(reply, NewsReply):
            outbound = News(
                [NewsArticle(a.title, a.url, a.description, a.pic_url) for a in reply.articles]
            )
        else:
            raise ValueError(f"no send-API form for {type(reply).__name__}")
        return SEND, self.client.bodies(app, outbound, Recipients.of(member))

    # -- delivering ------------------------------------------------------------------------------

    def _lease_owner(self) -> str:
        """A name for one lease: this process's, plus a part of its own, so that a lease
        fences even an attempt of this process that outlived it."""
        return f"{self.owner()}/{uuid.uuid4().hex[:8]}"

    def deliver(self, item_id: str) -> OutboxItem | None:
        """Lease the item now and attempt it (None if someone else holds it)."""
        item = self.store.outbox_claim(item_id, self._lease_owner(), self.policy.lease_s)
        return None if item is None else self.attempt(item)

    def due(self, limit: int = 16) -> list[OutboxItem]:
        """Lease items whose time has come, to attempt them."""
        return self.store.outbox_due(self._lease_owner(), self.policy.lease_s, limit)

    def attempt(self, item: OutboxItem) -> OutboxItem:
        """Send the item's remaining parts in order; store the progress and the outcome."""
        return self._attempt(item)[0]

    def _attempt(self, item: OutboxItem) -> tuple[OutboxItem, WecomError | None]:
        error: WecomError | None = None
        results = list(item.results)
        parts_done = item.parts_done
        try:
            for n in range(item.parts_done, len(item.bodies)):
                results.append(self._send_part(item, n))
                parts_done = n + 1
        except LeaseLost:
            log.warning("outbox %s: lease lost before part %d; its new holder sends it",
                        item.id, parts_done)  # fmt: skip
            return item, None  # nothing saved: the lease's new holder owns the item
        except RateLimited as exc:  # wait for the window, without counting a failure
            saved = replace(item, parts_done=parts_done, results=tuple(results),
                            next_at=self.clock() + exc.retry_after, error=str(exc))  # fmt: skip
        except WecomError as exc:
            saved = self._failed(replace(item, parts_done=parts_done, results=tuple(results)), exc)
            error = exc
        else:
            saved = replace(
                item, state=DONE, parts_done=parts_done, results=tuple(results), error=""
            )
        self.store.outbox_save(saved)
        return saved, error

    def _send_part(self, item: OutboxItem, n: int) -> dict[str, Any]:
        """Send part `n`; before each request the fence renews the item's lease, or stops."""
        body = item.bodies[n]

        def fence() -> bool:
            return self.store.outbox_hold(item.id, item.owner, self.policy.lease_s)

        if item.api == UPDATE_CARD:  # its response_code is single-use: a repeat is harmless
            try:
                return self.client.call(
                    item.app, "POST", item.api, json=body, retry=True, fence=fence
                )
            except ApiError as exc:
                if exc.errcode == 60140 and item.attempts > 0:
                    return {"errcode": 0, "note": "response_code used by an earlier attempt"}
                raise
        if item.api == RESPONSE_URL:  # an AI bot's one-off URL: plain JSON, no token
            return self.client.post_url(body["url"], body["body"], fence=fence)
        if item.api == SEND_MSG:  # an AI bot's long connection: only its holder sends
            if not fence():
                raise LeaseLost("the lease on this send passed to another sender")
            return dict(self.connections.send(body["bot"], body["body"]))
        if item.api == WEBHOOK:  # a group robot: its window first (RateLimited: wait)
            assert self.webhooks is not None
            self.webhooks.reserve(body["hook"])
            if not fence():
                raise LeaseLost("the lease on this post passed to another sender")
            return self.webhooks.post(body["hook"], body["body"])
        if item.api != SEND:
            raise WecomError(f"{item.api}: nothing to send ({item.error})")
        self.client.reserve(item.app, recipients_of(body))  # RateLimited: wait, don't fail
        return self.client.send_body(item.app, body, f"{item.id}:{n}", fence=fence)

    def _may_retry(self, item: OutboxItem, exc: Exception) -> bool:
        """Whether another attempt is safe and useful: WeCom surely did nothing, or it did not
        answer but its duplicate check would swallow a repeat (still inside the interval)."""
        if self.clock() - item.created_at > self.policy.max_age_s:
            return False
        if isinstance(exc, Unreachable):
            return True
        if isinstance(exc, NoAnswer):
            if not exc.replayable:
                return False
            if item.api in (UPDATE_CARD, RESPONSE_URL):
                return True
            if item.api == SEND_MSG:
                return False  # no duplicate check over the connection: it may have arrived
            interval = float(item.bodies[item.parts_done].get("duplicate_check_interval", 1800))
            return self.clock() - item.created_at < interval - CHECK_MARGIN_S
        return isinstance(exc, ApiError) and exc.errcode in RETRY_LATER

    def _failed(self, item: OutboxItem, exc: Exception) -> OutboxItem:
        attempts = item.attempts + 1
        if self._may_retry(item, exc):
            self.client.metrics.outbox_retry()
            delay = self.policy.delay(attempts)
            log.warning(
                "outbox %s: attempt %d failed (%s); next in %.0f s", item.id, attempts, exc, delay
            )
            return replace(item, state=PENDING, attempts=attempts, next_at=self.clock() + delay,
                           error=str(exc))  # fmt: skip
        if isinstance(exc, NoAnswer):
            exc = NoAnswer(
                f"{exc}; not sent again, since WeCom's duplicate check would not stop a second "
                f"copy (`wecom outbox retry {item.id}` sends it anyway)"
            )
        log.error(
            "outbox %s: giving up after %d attempt(s), kept as dead: %s", item.id, attempts, exc
        )
        return replace(item, state=DEAD, attempts=attempts, error=str(exc))
