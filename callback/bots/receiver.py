"""The bot receiver: AI-bot callbacks verified, decrypted, routed, and answered at once.

- A message is claimed in the inbox (one run per `msgid`, on any worker); the first answer is
  its stream at once, empty and unfinished, while the handler runs on a worker thread. A retry
  of the message gets the same stream back. A member with 3 messages in flight gets a short,
  finished answer for a 4th.
- A stream refresh is answered from the store with the latest snapshot, in milliseconds, by
  whichever worker gets it; an unknown stream is finished politely. Past 5.5 minutes from the
  message, an unfinished stream is finished with a notice (the answer follows by response_url).
- enter_chat (a welcome) and template_card_event (a card update) are answered within their
  single attempt (5 s); feedback_event is answered empty, its handler run in the background.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from callback.bots import messages
from callback.bots.messages import (
    BotCardEvent,
    BotEvent,
    BotFeedback,
    StreamRefresh,
    chat_of,
)
from callback.bots.replies import (
    CONTENT_LIMIT_BYTES,
    split,
    stream_body,
    update_body,
    welcome_body,
)
from callback.bots.runner import BotRunner
from callback.bots.streams import (
    CUT_AT_S,
    LATE_NOTICE,
    Streams,
    StreamState,
    shown_at_cut,
    stream_id,
)
from callback.config import BotSettings, Settings
from callback.delivery import Delivery, budget
from callback.errors import BadRequest, ReceiveIdError, StaleTimestamp, UnknownApp, WecomError
from callback.inbound.crypto import MsgCrypto
from callback.inbound.messages import Message
from callback.inbound.receiver import Answer, Query
from callback.inbound.replies import Reply, UpdateTemplateCardReply, as_reply, joined
from callback.router import Match, Route

log = logging.getLogger("wecom.bots")

BUSY = "I'm still answering your earlier messages; please send this again in a moment."
#: WeCom waits this long for a welcome or a card update (one attempt, no retry).
EVENT_BUDGET_S = 4.0


@dataclass(frozen=True)
class _Bot:
    settings: BotSettings
    crypto: MsgCrypto


class BotReceiver:
    """Runs the callbacks of the configured bots (callback mode) through the router."""

    def __init__(
        self,
        settings: Settings,
        delivery: Delivery,
        resolve: Callable[[Message, str], tuple[Route, Match] | None],
        downloaders: dict[str, Callable[[str, str], bytes]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.delivery = delivery
        self.resolve = resolve
        self.clock = clock
        self.max_skew = settings.server.max_clock_skew_s
        self.bots = {
            name: _Bot(bot, MsgCrypto.create(bot.token, bot.encoding_aes_key, ""))
            for name, bot in settings.bots.items()
            if bot.mode == "callback"
        }
        self.streams = Streams(delivery.store, clock)
        # when an unfinished stream is finished with a notice; WECOM_BOT_CUT_AT_S shortens
        # WeCom's 6 minutes for tests with real processes (never set it in production)
        self.cut_at_s = float(os.environ.get("WECOM_BOT_CUT_AT_S", CUT_AT_S))
        self.runner = BotRunner(delivery, self.streams, downloaders)
        for name in self.bots:
            delivery.register(name, messages.parse, self.runner.run)

    def known(self) -> Collection[str]:
        """The bots that receive callbacks here."""
        return self.bots.keys()

    def _bot(self, name: str) -> _Bot:
        bot = self.bots.get(name)
        if bot is None:
            raise UnknownApp(f"no AI bot {name!r} receives callbacks here")
        return bot

    def _check_time(self, timestamp: str) -> None:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 20):
            raise BadRequest("timestamp is not a whole number of seconds")
        if self.max_skew and abs(self.clock() - int(timestamp)) > self.max_skew:
            raise StaleTimestamp(
                f"timestamp is {int(self.clock() - int(timestamp))} s off our clock "
                f"(limit server.max_clock_skew_s = {self.max_skew})"
            )

    def verify_url(self, name: str, args: Mapping[str, str]) -> Answer:
        """GET: the decrypted echostr, bare (WeCom wants it within 1 s)."""
        bot = self._bot(name)
        query = Query.of(args, "echostr")
        bot.crypto.verify(query.msg_signature, query.timestamp, query.nonce, args["echostr"])
        self._check_time(query.timestamp)
        return Answer(bot.crypto.decrypt(args["echostr"]), kind="verify")

    def receive(
        self, name: str, args: Mapping[str, str], body: bytes, arrived_at: float | None = None
    ) -> Answer:
        """POST: verify, decrypt, parse, check the bot, and answer."""
        bot = self._bot(name)
        query = Query.of(args)
        encrypted = _encrypted(body)
        bot.crypto.verify(query.msg_signature, query.timestamp, query.nonce, encrypted)
        self._check_time(query.timestamp)
        message = messages.parse(bot.crypto.decrypt(encrypted))
        expected = bot.settings.bot_id
        if expected and message.to_user != expected:
            raise ReceiveIdError(f"callback for bot {message.to_user!r}, not this bot's bot_id")
        arrived = self.clock() if arrived_at is None else arrived_at
        reply: dict[str, Any] | None
        then: Callable[[], None] | None = None
        if isinstance(message, StreamRefresh):
            reply = self._refresh(message)
        elif isinstance(message, BotEvent | BotCardEvent | BotFeedback):
            reply = self._event(name, message, arrived)
        else:
            reply, then = self._message(name, message)
        if reply is None:
            return Answer(kind=message.kind, then=then)
        plaintext = json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()
        encrypted_reply = bot.crypto.encrypt(plaintext)
        sealed = {
            "encrypt": encrypted_reply,
            "msgsignature": bot.crypto.sign(query.timestamp, query.nonce, encrypted_reply),
            "timestamp": int(query.timestamp),
            "nonce": query.nonce,  # WeCom wants its own nonce back
        }
        return Answer(json.dumps(sealed).encode(), kind=message.kind, then=then)

    # -- messages and refreshes -----------------------------------------------------------------

    def _message(
        self, name: str, message: Message
    ) -> tuple[dict[str, Any] | None, Callable[[], None] | None]:
        """The first reply (an empty, unfinished stream), and the handler's start, for once
        that reply is written; a retry gets the stream as it is, and starts nothing."""
        found = self.resolve(message, name)
        if found is None:
            self.delivery.claim(name, message, as_json=True, run=False)
            return None, None
        sid = stream_id(name, message.dedup_key)
        feedback = message.dedup_key.removeprefix("msg:")
        key = f"{name}:{message.dedup_key}"
        # the stream exists before the claim: whoever runs the handler (this process, or
        # recovery after a crash right after the claim) finds it
        state = self.streams.start(
            StreamState(sid, key, message.from_user, self.clock(), chat_of(message).response_url)
        )
        record = self.delivery.claim(name, message, as_json=True, run=True)
        if not record.created:  # a retry, perhaps to another worker: the same stream
            state = self.streams.get(sid) or state
            if state.finished:  # with its pictures and card: WeCom asks no more after this
                return self._finished(state, feedback), None
            return stream_body(sid, state.content, finish=False, feedback_id=feedback), None
        if not self.streams.enter(name, message.from_user, key):
            self.streams.put(replace(state, content=BUSY, finished=True))
            self.delivery.store.inbox_finish(key, self.delivery.owner, None, pushed=False)
            return stream_body(sid, BUSY, finish=True), None
        # a retry that took over after a crash shows what the member already saw, not less
        first = stream_body(sid, state.content, finish=False, feedback_id=feedback)
        return first, lambda: self.delivery.spawn(record, message, *found)

    def _finished(self, state: StreamState, feedback_id: str = "") -> dict[str, Any]:
        """The final snapshot: the text, the pictures, and the card (once per message)."""
        sid = state.stream_id
        card = state.card if state.card and self.streams.take_card(sid) else None
        return stream_body(sid, state.content, finish=True, images=state.raw_images(), card=card,
                           feedback_id=feedback_id)  # fmt: skip

    def _refresh(self, message: StreamRefresh) -> dict[str, Any]:
        sid = message.stream_id
        state = self.streams.get(sid) if sid else None
        if state is None:
            return stream_body(sid, "", finish=True)  # unknown (or forgotten): stop asking
        if state.finished:
            return self._finished(state)
        if self.clock() - state.started_at >= self.cut_at_s or self.streams.was_cut(sid):
            room = CONTENT_LIMIT_BYTES - len(LATE_NOTICE.encode())
            head, _ = split(state.content, room)
            shown = shown_at_cut(self.streams.end(sid, f"cut:{len(head)}"))
            if shown is None:  # the handler ended first: its final snapshot stands
                final = self.streams.get(sid)
                return self._finished(final) if final else stream_body(sid, "", finish=True)
            # the handler's thread sends the answer by response_url when it ends
            return stream_body(sid, state.content[:shown] + LATE_NOTICE, finish=True)
        return stream_body(sid, state.content, finish=False)

    # -- events ---------------------------------------------------------------------------------

    def _event(self, name: str, message: Message, arrived: float) -> dict[str, Any] | None:
        found = self.resolve(message, name)
        record = self.delivery.claim(name, message, as_json=True, run=found is not None)
        if found is None or not record.created:
            return None
        route, match = found
        if isinstance(message, BotFeedback):  # only an empty answer is allowed
            self.delivery.spawn(record, message, route, match)
            return None
        wait = EVENT_BUDGET_S - (self.clock() - arrived)
        try:
            reply = self._within(record, message, route, match, wait)
            return None if reply is None else _event_body(name, message, reply)
        finally:  # whatever the answer: the event's single attempt is used
            self.delivery.store.inbox_finish(record.key, self.delivery.owner, None, pushed=False)

    def _within(
        self, record: Any, message: Message, route: Route, match: Match, wait_s: float
    ) -> Reply | None:
        """The handler's reply if it comes within `wait_s`; else None (the event's single
        attempt is over: WeCom drops a late answer), logged."""
        ctx = self.runner.context(record, message, route, match)

        def call() -> Reply | None:
            return self.delivery.invoke(record, message, route, match, ctx=ctx, consume=_single)

        def late(reply: Reply | None) -> None:
            log.error("bot %s: the %s handler took longer than the event's 5 s; its answer "
                      "is dropped", record.app, message.kind)  # fmt: skip

        submit = lambda job: self.delivery.workers.submit(record.key, job)  # noqa: E731
        in_time, reply = budget.within(max(wait_s, 0.0), call, submit, late)
        return reply if in_time else None


def _event_body(name: str, message: Message, reply: Reply) -> dict[str, Any] | None:
    """The answer to an event: a card update for a card event, a welcome for enter_chat; a
    reply WeCom would refuse (another type, a card that breaks its rules) is logged, and
    nothing is sent."""
    try:
        if isinstance(message, BotCardEvent) and isinstance(reply, UpdateTemplateCardReply):
            return update_body(reply, message.task_id)
        if message.kind == "enter_chat":
            return welcome_body(reply)
    except WecomError as exc:
        log.error("bot %s: the %s handler's answer is refused (%s); nothing is sent",
                  name, message.kind, exc)  # fmt: skip
        return None
    log.error("bot %s: %s has no answer of type %s; nothing is sent",
              name, message.kind, type(reply).__name__)  # fmt: skip
    return None


def _single(output: Any) -> Reply | None:
    """An event handler's answer: a str (a welcome text) or a reply value."""
    return as_reply(joined(output))


def _encrypted(body: bytes) -> str:
    """The ciphertext of a bot callback's JSON body (`encrypt`, or `Encrypt` leniently)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("bot callback body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("bot callback body is not a JSON object")
    value = doc.get("encrypt", doc.get("Encrypt"))
    if not isinstance(value, str) or not value:
        raise BadRequest("bot callback body has no encrypt field")
    return value
