"""Streams: an AI bot's answer as it grows, kept in the shared state store.

WeCom shows a streamed answer by asking for it again and again (refresh callbacks, about once
a second, for up to 6 minutes from the member's message), and any of them may reach any
worker or host. So the stream's state lives in the store, not in a process: the handler's
thread writes each new snapshot (`Stream.publish`), and whichever process gets a refresh
reads it (`snapshot`). A stream id is derived from the message, so a retry of the message, on
any worker, gets the same stream back.

Keys, each written by one party only, so that no write can undo another:
- `stream:ID` (the handler's thread): content so far, finished, pictures, card;
- `stream:ID:end`, written once, by whichever comes first: the handler's thread when it has
  published the final snapshot (`done`), or a refresh past 5.5 minutes that finishes the
  stream early with a notice (`cut:N`, N the characters of the answer the member saw); after a
  cut the handler's answer follows by `response_url`, and a refresh that lost to `done`
  answers the final snapshot instead;
- `stream:ID:card` (the refresh that sent the card): a card goes once per message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from callback.bots.replies import check_images, split
from callback.bots.uploads import FileReply
from callback.errors import ValidationError
from callback.store import Store

log = logging.getLogger("wecom.bots")

#: WeCom stops asking 6 minutes after the member's message; we finish before it does.
WINDOW_S = 360.0
CUT_AT_S = 330.0
#: How long a stream's state is kept: its response_url lives an hour.
KEEP_S = 3600.0
#: A new snapshot is written at most this often (refreshes come about once a second).
PUBLISH_EVERY_S = 0.2
#: What the member reads when the answer outgrows the 6 minutes.
LATE_NOTICE = "\n\n(This is taking longer than usual: the full answer follows as a new message.)"
#: Members may have at most 3 messages in flight with one bot.
IN_FLIGHT = 3


def stream_id(bot: str, msg_id: str) -> str:
    """The stream of a message: the same for every retry of it, on any worker."""
    digest = hashlib.sha1(f"{bot}\0{msg_id}".encode()).hexdigest()[:20]  # noqa: S324 - an id
    return f"s{digest}"


@dataclass(frozen=True)
class StreamState:
    """One stream as stored: what the member sees, and how it ends."""

    stream_id: str
    key: str  # the message's inbox key
    user: str
    started_at: float  # when the member's message reached us: the window counts from here
    response_url: str = ""
    content: str = ""
    finished: bool = False
    images: tuple[str, ...] = ()  # base64, sent with the final snapshot only
    card: dict[str, Any] | None = None
    rest: str = ""  # what did not fit in 20480 bytes: it follows by response_url

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StreamState:
        data = json.loads(text)
        data["images"] = tuple(data.get("images", ()))
        return cls(**data)

    def raw_images(self) -> tuple[bytes, ...]:
        return tuple(base64.b64decode(i) for i in self.images)


def shown_at_cut(how: str | None) -> int | None:
    """N of an end word `cut:N`; None for `done` or no word."""
    if how is None or not how.startswith("cut:"):
        return None
    try:
        return max(int(how[4:]), 0)
    except ValueError:
        return 0


class Flusher:
    """One thread per process that publishes the pieces a handler's thread held back (it
    is busy in the handler until the next piece comes)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._waiting: set[Stream] = set()
        self._pid = 0

    def watch(self, stream: Stream) -> None:
        with self._lock:
            self._waiting.add(stream)
            if self._pid != os.getpid():  # started on first use in each (forked) process
                self._pid = os.getpid()
                threading.Thread(target=self._loop, name="wecom-streams", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(PUBLISH_EVERY_S / 2)
            with self._lock:
                waiting, self._waiting = self._waiting, set()
            for stream in waiting:
                try:
                    stream.flush(self.clock())
                except Exception:
                    log.exception("publishing stream %s failed", stream.state.stream_id)


class Streams:
    """The streams of one store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.flusher = Flusher(clock)

    def get(self, sid: str) -> StreamState | None:
        raw = self.store.get(f"stream:{sid}")
        return None if raw is None else StreamState.from_json(raw)

    def put(self, state: StreamState) -> None:
        self.store.put(f"stream:{state.stream_id}", state.to_json(), KEEP_S)

    def start(self, state: StreamState) -> StreamState:
        """Store a new stream, unless it exists (a retry): the stored one is returned."""
        stored = self.store.setdefault(f"stream:{state.stream_id}", state.to_json(), KEEP_S)
        return StreamState.from_json(stored)

    def end(self, sid: str, how: str) -> str:
        """Say how the stream ends, `done` or `cut:N`; the first word stands, and is returned."""
        return self.store.setdefault(f"stream:{sid}:end", how, KEEP_S)

    def was_cut(self, sid: str) -> bool:
        """Whether a refresh finished the stream early (its end word is `cut:N`)."""
        return shown_at_cut(self.store.get(f"stream:{sid}:end")) is not None

    def take_card(self, sid: str) -> bool:
        """True once per stream: the caller sends the card."""
        mark = str(self.clock())
        return self.store.setdefault(f"stream:{sid}:card", mark, KEEP_S) == mark

    # -- the member's three messages in flight ------------------------------------------------

    def enter(self, bot: str, user: str, key: str) -> bool:
        """Take one of the member's in-flight places for message `key` (again for a retry)."""
        return any(
            self.store.acquire(f"inflight:{bot}:{user}:{slot}", key, WINDOW_S + 60)
            for slot in range(IN_FLIGHT)
        )

    def leave(self, bot: str, user: str, key: str) -> None:
        for slot in range(IN_FLIGHT):
            self.store.release(f"inflight:{bot}:{user}:{slot}", key)


@dataclass(eq=False)  # one per run, watched by identity
class Stream:
    """The handler thread's side of one stream: it appends pieces and publishes snapshots,
    at most every PUBLISH_EVERY_S (a piece held back is published by the flusher thread, so
    none waits for the next), never shorter than what the member already saw (a re-run after
    a crash catches up before it shows anything)."""

    streams: Streams
    state: StreamState
    full: str = ""
    published_at: float = 0.0
    dirty: bool = False
    card: dict[str, Any] | None = None
    images: tuple[bytes, ...] = field(default=())
    lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, piece: str) -> None:
        with self.lock:
            self.full += piece
            self.dirty = True
        self.flush(self.streams.clock())

    def add_file(self, reply: FileReply) -> None:
        """A picture goes under the final snapshot; other kinds have no form here."""
        if reply.kind != "image":
            raise ValidationError(
                f"msgtype: a bot in callback mode cannot answer with a {reply.kind} (WeCom's "
                'callback transport takes a stream or a card); set mode = "connection"',
                field="msgtype", value=reply.kind, limit="stream | template_card",
            )  # fmt: skip
        images = (*self.images, reply.data)
        check_images(images)
        self.images = images

    def flush(self, now: float) -> None:
        """Publish what is new, if the last snapshot is old enough."""
        with self.lock:
            if not self.dirty or now - self.published_at < PUBLISH_EVERY_S:
                if self.dirty:
                    self.streams.flusher.watch(self)
                return
            self.dirty, self.published_at = False, now
            self._publish(finished=False)

    def finish(self) -> StreamState:
        """The final snapshot: up to 20480 bytes, the pictures, the card; what did not fit is
        kept in `rest` for the response_url."""
        with self.lock:
            self.dirty = False
            return self._publish(finished=True)

    def _publish(self, *, finished: bool) -> StreamState:
        head, rest = split(self.full)
        stored = self.streams.get(self.state.stream_id) or self.state
        if not finished and len(head) < len(stored.content):
            return stored  # a re-run catching up: the member keeps the longer text
        images = tuple(base64.b64encode(i).decode() for i in self.images) if finished else ()
        state = replace(
            stored, content=head, finished=finished, images=images, card=self.card, rest=rest
        )
        self.streams.put(state)
        return state
