"""Connections: AI bots in connection mode, with the same handlers and guarantees as callbacks.

Each such bot has a `Holder` (one process of all holds its WebSocket). The callbacks it gets go
through the same inbox (one run per `msgid`) and router as the callback transport, on handler
threads (never the connection's reader): a message's answer streams as `aibot_respond_msg`
frames on its req_id (`WsStream`); enter_chat gets its welcome and template_card_event its card
update within their 5 s; feedback_event runs with nothing to answer. What cannot go on the
req_id (a re-run after a crash, a stream that expired, text beyond 20480 bytes, `ctx.send` on
a bot) goes by `aibot_send_msg` through the durable outbox, within WeCom's per-conversation
windows (30 a minute, 1000 an hour), and only from the process that holds the connection.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from callback.bots import messages
from callback.bots.holder import Holder
from callback.bots.link import AckError, Frame, Link, LinkClosed
from callback.bots.messages import BotCardEvent, BotFeedback, chat_of
from callback.bots.replies import card_body, markdown_body, split, update_body, welcome_body
from callback.bots.runner import _consume
from callback.bots.streams import stream_id
from callback.bots.uploads import UPLOAD_LIMITS, FileReply, pictures, upload
from callback.bots.ws_stream import RATE_LIMITED, WsStream
from callback.config import Settings
from callback.context import CallbackLog, Context
from callback.delivery import Delivery
from callback.delivery.outbox import SEND_MSG
from callback.errors import ConfigError, NoAnswer, RateLimited, Unreachable, WecomError
from callback.inbound.messages import Message
from callback.inbound.replies import Reply, UpdateTemplateCardReply, as_reply, joined
from callback.outbound.client import SendResult
from callback.router import Match, Route
from callback.store.records import InboxRecord

log = logging.getLogger("wecom.bots.connection")

CONVERSATION_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 30), (3600.0, 1000))
EVENT_WINDOW_S = 4.5


def send_msg_body(message: Message, what: dict[str, Any]) -> dict[str, Any]:
    """A proactive push to the chat a message came from (single: the member)."""
    chat = chat_of(message)
    target = chat.chat_id if chat.is_group else message.from_user
    return {"chatid": target, "chat_type": 2 if chat.is_group else 1, **what}


def _upload_part(reply: FileReply) -> dict[str, Any]:
    """A file kept in the outbox until its attempt uploads it (a media_id lasts 3 days, an
    outbox item may wait longer)."""
    fields = {"kind": reply.kind, "filename": reply.filename, "title": reply.title,
              "description": reply.description}  # fmt: skip
    return {"upload": {**fields, "data": base64.b64encode(reply.data).decode()}}


def _from_part(part: dict[str, Any]) -> FileReply:
    fields = dict(part)
    return FileReply(base64.b64decode(fields.pop("data")), **fields)


class _Sender:
    """ctx.send on a bot in connection mode: a markdown (a str) or a template card to the
    message's chat by aibot_send_msg, or a post to a group robot (webhook=...)."""

    def __init__(self, connections: Connections, bot: str, key: str, origin: Message) -> None:
        self.connections, self.bot, self.key, self.origin = connections, bot, key, origin
        self.count = 0

    def send(self, app: str, message: Any, to: Any, **options: Any) -> SendResult:
        item = f"{self.key}:send:{self.count}"
        self.count += 1
        hook = options.get("webhook")
        if hook is not None:
            return self.connections.delivery.outbox.post(item, hook, message)
        content = message if isinstance(message, str) else getattr(message, "content", None)
        if not isinstance(content, str):
            raise ConfigError(f"bot {self.bot!r}: ctx.send takes text (a markdown) here")
        self.connections.push(item, self.bot, self.origin, content)
        return SendResult(msgid="", queued=True)


def _outcome(bot: str, exc: AckError) -> WecomError:
    """WeCom's refusal of a push, in the outbox's terms: 846607 (the conversation's 30 a
    minute, which counts our stream frames too) waits a minute; any other is final."""
    if exc.errcode == RATE_LIMITED:
        return RateLimited(f"bot {bot!r}: {exc}", retry_after=60.0)
    return exc


class Connections:
    """The long connections of the configured bots, wired to delivery."""

    def __init__(
        self,
        settings: Settings,
        delivery: Delivery,
        resolve: Callable[[Message, str], tuple[Route, Match] | None],
        downloaders: dict[str, Callable[[str, str], bytes]],
    ) -> None:
        self.delivery = delivery
        self.resolve = resolve
        self.downloaders = downloaders
        self.holders = {
            name: Holder(
                bot, delivery.store, self._dispatcher(name), lease_s=settings.server.lease_s
            )
            for name, bot in settings.bots.items()
            if bot.mode == "connection"
        }
        for name in self.holders:
            delivery.register(name, messages.parse, self._rerun)
        delivery.outbox.connections = self

    def start(self) -> None:
        for holder in self.holders.values():
            holder.start()

    def stop(self) -> None:
        for holder in self.holders.values():
            holder.stop()

    # -- sending by aibot_send_msg ---------------------------------------------------------------

    def push(self, item_id: str, bot: str, message: Message, content: str) -> None:
        """Text to the message's chat by aibot_send_msg, through the outbox, in parts of at
        most 20480 bytes, in order."""
        parts, rest = [], content
        while rest:
            head, rest = split(rest)
            parts.append({"bot": bot, "body": send_msg_body(message, markdown_body(head))})
        self.delivery.outbox.add(item_id, bot, SEND_MSG, parts)
        self.delivery.outbox.kick(item_id)

    def push_extras(
        self, item_id: str, bot: str, message: Message, files: list[FileReply],
        card: dict[str, Any] | None,
    ) -> None:  # fmt: skip
        """Files, pictures and a card to the message's chat by aibot_send_msg, in order."""
        what = [_upload_part(f) for f in files] + ([card_body(card)] if card else [])
        if what:
            parts = [{"bot": bot, "body": send_msg_body(message, w)} for w in what]
            self.delivery.outbox.add(item_id, bot, SEND_MSG, parts)
            self.delivery.outbox.kick(item_id)

    def send(self, bot: str, body: dict[str, Any]) -> dict[str, Any]:
        """One aibot_send_msg, from the process that holds the bot's connection, within the
        conversation's windows (RateLimited otherwise: the outbox waits and tries again)."""
        holder = self.holders.get(bot)
        if holder is None:
            raise ConfigError(f"bot {bot!r} is not in connection mode")
        link = holder.link
        if link is None or link.closed.is_set():
            raise RateLimited(f"bot {bot!r}: not connected in this process", retry_after=1.0)
        key = f"aibot:{bot}:{body.get('chatid', '')}"
        wait = self.delivery.store.reserve([key], CONVERSATION_LIMITS)
        if wait > 0:
            raise RateLimited(f"bot {bot!r}: the conversation's window is full", retry_after=wait)
        try:
            if "upload" in body:
                body = dict(body)  # the outbox's copy stays as it is, for another attempt
                reply = _from_part(body.pop("upload"))
                body.update(reply.frame_body(upload(link, reply, self._uploads(bot))))
        except (LinkClosed, TimeoutError) as exc:  # the message itself has not gone: again
            raise Unreachable(f"bot {bot!r}: the upload failed ({exc})") from None
        except AckError as exc:
            raise _outcome(bot, exc) from None
        try:
            return link.request(SEND_MSG, body)
        except LinkClosed as exc:
            if not exc.sent:
                raise Unreachable(f"bot {bot!r}: {exc}") from None
            raise NoAnswer(f"bot {bot!r}: {exc} before WeCom's ack; it may have arrived") from None
        except TimeoutError as exc:
            raise NoAnswer(f"bot {bot!r}: {exc}; it may have arrived") from None
        except AckError as exc:
            raise _outcome(bot, exc) from None

    def _uploads(self, bot: str) -> Callable[[], float]:
        """Books one upload in the bot's windows (30 a minute, 1000 an hour)."""
        return lambda: self.delivery.store.reserve([f"aibot-upload:{bot}"], UPLOAD_LIMITS)

    # -- callbacks -------------------------------------------------------------------------------

    def _dispatcher(self, bot: str) -> Callable[[Link, Frame], None]:
        return lambda link, frame: self._on(bot, link, frame)

    def _on(self, bot: str, link: Link, frame: Frame) -> None:
        """A callback frame (on the link's reader thread): claim it, run it on a worker."""
        body = frame.get("body")
        req_id = str((frame.get("headers") or {}).get("req_id", ""))
        if frame.get("cmd") not in ("aibot_msg_callback", "aibot_event_callback", "aibot_callback"):
            log.info("bot %s: ignoring a %s frame", bot, frame.get("cmd"))
            return
        if not isinstance(body, dict):
            log.warning("bot %s: a callback frame without a body; ignored", bot)
            return
        arrived = time.monotonic()
        try:
            message = messages.parse(json.dumps(body, ensure_ascii=False).encode())
        except WecomError as exc:
            log.warning("bot %s: a callback that does not parse (%s); ignored", bot, exc)
            return
        found = self.resolve(message, bot)
        record = self.delivery.claim(bot, message, as_json=True, run=found is not None)
        if found is None or not record.created:
            return  # nothing to run, or a repeat of a callback already taken
        route, match = found
        self.delivery.workers.submit(
            record.key, lambda: self._run(link, req_id, arrived, record, message, route, match)
        )

    def _context(
        self, record: InboxRecord, message: Message, route: Route, match: Match
    ) -> Context:
        extra = {"app": record.app, "key": record.key}
        adapter = CallbackLog(logging.getLogger(route.handler.__module__), extra)
        return Context(
            app=record.app, message=message, match=match, log=adapter,
            sender=_Sender(self, record.app, record.key, message),
            downloader=self.downloaders.get(record.app),
        )  # fmt: skip

    def _run(
        self, link: Link, req_id: str, arrived: float, record: InboxRecord, message: Message,
        route: Route, match: Match,
    ) -> None:  # fmt: skip
        ctx = self._context(record, message, route, match)
        try:
            if isinstance(message, BotFeedback):
                self.delivery.invoke(record, message, route, match, ctx=ctx)
            elif message.is_event:
                self._event(link, req_id, arrived, record, message, route, match, ctx)
            else:
                self._stream(link, req_id, record, message, route, match, ctx)
        finally:
            self.delivery.store.inbox_finish(record.key, self.delivery.owner, None, pushed=False)

    def _event(
        self, link: Link, req_id: str, arrived: float, record: InboxRecord, message: Message,
        route: Route, match: Match, ctx: Context,
    ) -> None:  # fmt: skip
        reply = self.delivery.invoke(record, message, route, match, ctx=ctx, consume=_one)
        if reply is None:
            return
        if time.monotonic() - arrived > EVENT_WINDOW_S:
            log.error("bot %s: the %s handler took longer than the event's 5 s; its answer is "
                      "dropped", record.app, message.kind)  # fmt: skip
            return
        if isinstance(message, BotCardEvent) and isinstance(reply, UpdateTemplateCardReply):
            cmd, body = "aibot_respond_update_msg", update_body(reply, message.task_id)
        elif message.kind == "enter_chat" and (welcome := welcome_body(reply)) is not None:
            cmd, body = "aibot_respond_welcome_msg", welcome
        else:
            log.error("bot %s: %s has no answer of type %s", record.app, message.kind,
                      type(reply).__name__)  # fmt: skip
            return
        try:
            link.request(cmd, body, req_id=req_id)
        except (WecomError, TimeoutError) as exc:
            log.error("bot %s: %s answer not taken: %s", record.app, message.kind, exc)

    def _stream(
        self, link: Link, req_id: str, record: InboxRecord, message: Message, route: Route,
        match: Match, ctx: Context,
    ) -> None:  # fmt: skip
        follow = f"{record.key}:follow"
        stream = WsStream(
            link, req_id, stream_id(record.app, message.dedup_key),
            feedback_id=message.dedup_key.removeprefix("msg:"),
            follow_up=lambda text: self.push(follow, record.app, message, text),
        )  # fmt: skip
        try:
            self.delivery.invoke(
                record, message, route, match, ctx=ctx, consume=lambda out: _consume(stream, out)
            )
        finally:
            ended = stream.finish()
        if ended:
            self._after_stream(link, req_id, record, message, stream)
        else:  # its last frame may still come: nothing may go on the req_id before it
            self.push_extras(f"{record.key}:extras", record.app, message, stream.extras(),
                             stream.card)  # fmt: skip

    def _after_stream(
        self, link: Link, req_id: str, record: InboxRecord, message: Message, stream: WsStream
    ) -> None:
        """The stream's files and pictures (uploaded), then its card, on the req_id; what the
        req_id no longer takes goes by aibot_send_msg through the outbox."""
        files, card = stream.extras(), stream.card
        try:
            while files:
                media_id = upload(link, files[0], self._uploads(record.app))
                link.request("aibot_respond_msg", files[0].frame_body(media_id), req_id=req_id)
                files.pop(0)
            if card is not None:
                link.request("aibot_respond_msg", card_body(card), req_id=req_id)
                card = None
        except (WecomError, TimeoutError) as exc:
            log.warning("bot %s: %s; the rest of the answer follows by aibot_send_msg",
                        record.app, exc)  # fmt: skip
            self.push_extras(f"{record.key}:extras", record.app, message, files, card)

    def _rerun(self, record: InboxRecord, message: Message, route: Route, match: Match) -> None:
        """A callback re-run after a crash (its req_id died with the connection): the whole
        answer goes by aibot_send_msg."""
        ctx = self._context(record, message, route, match)
        got = _Collected()
        self.delivery.invoke(record, message, route, match, ctx=ctx,
                             consume=lambda out: _consume(got, out))  # fmt: skip
        if not message.is_event:
            if got.pieces:
                self.push(f"{record.key}:follow", record.app, message, "".join(got.pieces))
            files = [*got.files, *pictures(got.images)]
            self.push_extras(f"{record.key}:extras", record.app, message, files, got.card)
        self.delivery.store.inbox_finish(record.key, self.delivery.owner, None, pushed=True)


def _one(output: Any) -> Reply | None:
    return as_reply(joined(output))


class _Collected:
    """A handler's whole answer, whatever its form (str, generator, StreamReply...)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.files: list[FileReply] = []
        self.images: tuple[bytes, ...] = ()
        self.card: dict[str, Any] | None = None

    def append(self, piece: str) -> None:
        self.pieces.append(piece)

    def add_file(self, reply: FileReply) -> None:
        self.files.append(reply)
