"""The bot runner: a handler's answer to an AI-bot message, streamed off the request thread.

A `str` becomes the stream's whole text; a generator's pieces are appended as they come and
published as snapshots; `StreamReply`, `StreamWithCard` and `TemplateCardReply` add pictures
or a card to the final snapshot. When the handler is done the stream is finished, and what the
member could not see in it goes by the message's `response_url` (once, through the outbox): the
whole answer if the stream had to be finished early at the 6-minute window (what followed the
part the member saw, if the whole is too long for one message), or the part of a long answer
beyond 20480 bytes. A re-run after a crash catches up silently (see `Stream`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from callback.bots.messages import chat_of
from callback.bots.replies import (
    CONTENT_LIMIT_BYTES,
    StreamReply,
    StreamWithCard,
    TemplateCardReply,
    markdown_body,
    split,
)
from callback.bots.streams import Stream, Streams, StreamState, shown_at_cut, stream_id
from callback.bots.uploads import FileReply
from callback.context import CallbackLog, Context
from callback.delivery import Delivery
from callback.delivery.outbox import RESPONSE_URL, Outbox
from callback.errors import ConfigError
from callback.inbound.messages import Event, Message
from callback.inbound.replies import Reply, TextReply, as_reply, joined
from callback.router import Match, Route
from callback.store.records import InboxRecord

log = logging.getLogger("wecom.bots")

CUT_NOTE = "\n\n(The answer was longer than one message allows; it ends here.)"


class _BotSender:
    """ctx.send on a bot in callback mode: posts to group robots (webhook=...) go through the
    outbox; anything else is refused, since WeCom offers a bot no proactive send there."""

    def __init__(self, outbox: Outbox, bot: str, key: str) -> None:
        self.outbox, self.bot, self.key = outbox, bot, key
        self.count = 0

    def send(self, app: str, message: Any, to: Any, **options: Any) -> Any:
        hook = options.get("webhook")
        if hook is None:
            raise ConfigError(
                f"bot {self.bot!r} answers through its stream: return or yield the answer (a "
                "bot in callback mode cannot send on its own); use an app to send to members"
            )
        self.count += 1
        return self.outbox.post(f"{self.key}:post:{self.count - 1}", hook, message)


class BotRunner:
    """Runs a bot's routes into streams (as Delivery's channel for the bot)."""

    def __init__(
        self,
        delivery: Delivery,
        streams: Streams,
        downloaders: dict[str, Callable[[str, str], bytes]],
    ) -> None:
        self.delivery = delivery
        self.streams = streams
        self.downloaders = downloaders

    def context(self, record: InboxRecord, message: Message, route: Route, match: Match) -> Context:
        extra = {"app": record.app, "key": record.key}
        adapter = CallbackLog(logging.getLogger(route.handler.__module__), extra)
        return Context(
            app=record.app, message=message, match=match, log=adapter,
            sender=_BotSender(self.delivery.outbox, record.app, record.key),
            downloader=self.downloaders.get(record.app),
        )  # fmt: skip

    def run(self, record: InboxRecord, message: Message, route: Route, match: Match) -> None:
        """Run the route into the message's stream, finish it, and record the outcome."""
        if isinstance(message, Event):  # a feedback, or an event run again after a crash
            self._event(record, message, route, match)
            return
        sid = stream_id(record.app, message.dedup_key)
        state = self.streams.get(sid) or self.streams.start(
            StreamState(
                sid, record.key, message.from_user, record.created_at,
                chat_of(message).response_url,
            )
        )  # fmt: skip
        stream = Stream(self.streams, state)
        ctx = self.context(record, message, route, match)
        try:
            self.delivery.invoke(
                record, message, route, match, ctx=ctx, consume=lambda out: _consume(stream, out)
            )
            final = stream.finish()
            shown = shown_at_cut(self.streams.end(sid, "done"))  # unless a refresh cut it first
            self._follow_up(record, final, shown)
            self.delivery.store.inbox_finish(record.key, self.delivery.owner, None, pushed=False)
        finally:
            self.streams.leave(record.app, message.from_user, record.key)

    def _event(self, record: InboxRecord, message: Message, route: Route, match: Match) -> None:
        """An event's handler off the request: a feedback (its answer is empty by rule), or an
        event whose single 5-s attempt died with a crash; any answer is dropped, logged."""

        def drop(output: Any) -> None:
            if as_reply(joined(output)) is not None:
                log.warning("bot %s: the answer to %s %s is dropped (its 5 s are over)",
                            record.app, message.kind, record.key)  # fmt: skip

        ctx = self.context(record, message, route, match)
        self.delivery.invoke(record, message, route, match, ctx=ctx, consume=drop)
        self.delivery.store.inbox_finish(record.key, self.delivery.owner, None, pushed=False)

    def _follow_up(self, record: InboxRecord, final: StreamState, shown: int | None) -> None:
        """What the member did not see in the stream goes by response_url, once: after a cut
        at the window (`shown` characters seen), the whole answer if it fits one message, else
        what comes after what was seen; otherwise the part beyond 20480 bytes."""
        if shown is None:
            text = final.rest
        else:
            text = final.content + final.rest
            if len(text.encode()) > CONTENT_LIMIT_BYTES:
                text = text[shown:]
        if not text:
            return
        if not final.response_url:
            log.error("stream %s: %d bytes of the answer have nowhere to go (no response_url)",
                      final.stream_id, len(text.encode()))  # fmt: skip
            return
        head, rest = split(text, CONTENT_LIMIT_BYTES - len(CUT_NOTE.encode()))
        if rest:
            log.warning("stream %s: the answer goes past two messages; %d bytes are left out",
                        final.stream_id, len(rest.encode()))  # fmt: skip
            head += CUT_NOTE
        body = {"url": final.response_url, "body": markdown_body(head)}
        self.delivery.outbox.add(f"{record.key}:response_url", record.app, RESPONSE_URL, [body])
        self.delivery.outbox.kick(f"{record.key}:response_url")


class Sink(Protocol):
    """Where a handler's output goes: a stream (HTTP or connection mode), or a collector."""

    images: tuple[bytes, ...]
    card: dict[str, Any] | None

    def append(self, piece: str) -> None: ...

    def add_file(self, reply: FileReply) -> None: ...


def _consume(stream: Sink, output: Any) -> Reply | None:
    """Feed a handler's output into the stream (see the module docstring)."""
    if isinstance(output, Iterator):
        for piece in output:
            _take(stream, piece)
    elif output is not None:
        _take(stream, output)
    return None


def _take(stream: Sink, piece: Any) -> None:
    if isinstance(piece, str):
        stream.append(piece)
    elif isinstance(piece, TextReply):  # what an app's handler returns: the same text
        stream.append(piece.content)
    elif isinstance(piece, StreamReply):
        stream.images = piece.images
        stream.append(piece.content)
    elif isinstance(piece, StreamWithCard):
        stream.images, stream.card = piece.images, dict(piece.card)
        stream.append(piece.content)
    elif isinstance(piece, TemplateCardReply):
        stream.card = dict(piece.card)
    elif isinstance(piece, FileReply):
        stream.add_file(piece)
    else:
        raise TypeError(
            f"a bot handler gave {type(piece).__name__}; expected str, a generator of str, "
            "StreamReply, StreamWithCard, TemplateCardReply or FileReply"
        )
