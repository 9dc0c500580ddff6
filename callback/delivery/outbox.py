"""Outbox: sends that must happen (pushed replies, handler sends), retried until they do.

An item is stored before its first attempt, under an idempotency key derived from the callback
that caused it, so a handler re-run after a crash enqueues nothing new; each attempt carries
WeCom's enable_duplicate_check with the same key, so a replay after a lost answer is not
delivered twice. Transient failures back off (capped, jittered); a member's full rate window
waits instead of failing; nothing is dropped silently: an item that cannot go is kept, `dead`,
and logged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from callback import errcodes
from callback.errors import ApiError, RateLimited, ValidationError, WecomError
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
    Text,
    UpdateTemplateCard,
    Video,
    Voice,
)
from callback.outbound import Message as Outbound
from callback.outbound.client import SendResult, WecomClient, recipients_of
from callback.store import Store
from callback.store.records import DEAD, DONE, PENDING, OutboxItem

log = logging.getLogger("wecom.outbox")

SEND = "message/send"
UPDATE_CARD = "message/update_template_card"
#: Worth another try later: WeCom busy or limiting, or this server's IP not yet trusted (an
#: admin adds it; it takes a minute). A wrong secret is not retried: repeated wrong secrets
#: get the server's IP blocked for an hour. Such items are kept, dead, and logged.
RETRY_LATER = errcodes.TRANSIENT | {60020}


@dataclass(frozen=True)
class OutboxPolicy:
    """Backoff between attempts, how long an item may keep trying, and the lease per attempt."""

    base_s: float = 1.0
    cap_s: float = 300.0
    max_age_s: float = 24 * 3600.0
    lease_s: float = 60.0

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

    # -- enqueueing ------------------------------------------------------------------------------

    def add(self, item_id: str, app: str, api: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Store an item (once per id) due now."""
        self.store.outbox_add(OutboxItem(item_id, app, api, tuple(bodies), next_at=self.clock()))

    def send(
        self, item_id: str, app: str, message: Outbound, to: Any, **options: Any
    ) -> SendResult:
        """Enqueue and try at once: the result, or a `queued` result if it must wait or retry."""
        self.add(item_id, app, SEND, self.client.bodies(app, message, to, **options))
        claimed = self.store.outbox_claim(item_id, self.owner(), self.policy.lease_s)
        item, error = self._attempt(claimed) if claimed else (self.store.outbox_get(item_id), None)
        if item is not None and item.state == DONE and item.results:  # (perhaps by an earlier run)
            msgids = [str(r.get("msgid", "")) for r in item.results]
            return SendResult.of(item.results[0], msgids)
        if item is not None and item.state == DEAD:
            raise error or WecomError(f"send {item_id} failed: {item.error}")
        return SendResult(msgid="", queued=True)

    def push_reply(self, item_id: str, app: str, message: Message, reply: Reply) -> None:
        """Enqueue a handler's reply for the send API (it was late, or had to be), then try it."""
        try:
            api, bodies = self._reply_bodies(app, message, reply)
        except (ValidationError, ValueError) as exc:
            log.error(
                "reply to %s cannot be pushed (%s); it is lost: %s", message.from_user, reply, exc
            )
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
        elif isinstance(reply, NewsReply):
            outbound = News(
                [NewsArticle(a.title, a.url, a.description, a.pic_url) for a in reply.articles]
            )
        else:
            raise ValueError(f"no send-API form for {type(reply).__name__}")
        return SEND, self.client.bodies(app, outbound, Recipients.of(member))

    # -- delivering ------------------------------------------------------------------------------

    def deliver(self, item_id: str) -> OutboxItem | None:
        """Lease the item now and attempt it (None if someone else holds it)."""
        item = self.store.outbox_claim(item_id, self.owner(), self.policy.lease_s)
        return None if item is None else self.attempt(item)

    def due(self, limit: int = 16) -> list[OutboxItem]:
        """Lease items whose time has come, to attempt them."""
        return self.store.outbox_due(self.owner(), self.policy.lease_s, limit)

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
        body = item.bodies[n]
        if item.api == UPDATE_CARD:
            try:
                return self.client.call(item.app, "POST", item.api, json=body, retry=False)
            except ApiError as exc:
                if exc.errcode == 60140 and item.attempts > 0:
                    return {"errcode": 0, "note": "response_code used by an earlier attempt"}
                raise
        self.client.reserve(item.app, recipients_of(body))  # RateLimited: wait, don't fail
        return self.client.send_body(item.app, body, f"{item.id}:{n}")

    def _failed(self, item: OutboxItem, exc: Exception) -> OutboxItem:
        code = exc.errcode if isinstance(exc, ApiError) else None
        attempts = item.attempts + 1
        too_old = self.clock() - item.created_at > self.policy.max_age_s
        if code in RETRY_LATER and not too_old:
            self.client.metrics.outbox_retry()
            delay = self.policy.delay(attempts)
            log.warning(
                "outbox %s: attempt %d failed (%s); next in %.0f s", item.id, attempts, exc, delay
            )
            return replace(item, state=PENDING, attempts=attempts, next_at=self.clock() + delay,
                           error=str(exc))  # fmt: skip
        log.error(
            "outbox %s: giving up after %d attempt(s), kept as dead: %s", item.id, attempts, exc
        )
        return replace(item, state=DEAD, attempts=attempts, error=str(exc))
