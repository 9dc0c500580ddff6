"""A stream over the long connection: `aibot_respond_msg` frames on the message's req_id.

In connection mode WeCom does not ask for the stream: we push each snapshot. A pump thread
sends the newest text whenever the previous frame was acked (the handler never waits on the
network), and a keep-alive frame when nothing changed for 4 minutes (WeCom expires a stream
left idle for 6). At 5.5 minutes from its first frame, inside both lifetimes the protocol notes
give (6 minutes from the first frame in the doc, 10 minutes observed), the stream is finished
with a notice, even while the handler is silent, and the whole answer follows by
`aibot_send_msg`; the same happens when WeCom says the stream expired (846608), refuses the
req_id (846605, 846606) or the connection drops. A rate-limited frame (846607) waits and goes
again. Text beyond 20480 bytes follows by `aibot_send_msg` too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from callback.bots.link import ACK_TIMEOUT_S, AckError, Link, LinkClosed
from callback.bots.replies import split, stream_body
from callback.bots.streams import LATE_NOTICE
from callback.bots.uploads import FileReply, pictures

log = logging.getLogger("wecom.bots.stream")

KEEPALIVE_S = 240.0
HARD_LIMIT_S = 330.0  # inside both lifetimes the notes give: 6 min (doc), 10 min (seen)
RATE_WAITS_S = (3.0, 6.0, 12.0)
EXPIRED, INVALID_REQ, RESPONDED, RATE_LIMITED = 846608, 846605, 846606, 846607
#: The longest a last frame can take: its rate-limit waits and an ack timeout for each try.
FINISH_WAIT_S = sum(RATE_WAITS_S) + (len(RATE_WAITS_S) + 1) * ACK_TIMEOUT_S + 5.0


class WsStream:
    """The handler thread appends; the pump thread sends (see the module docstring)."""

    def __init__(
        self,
        link: Link,
        req_id: str,
        stream_id: str,
        *,
        feedback_id: str = "",
        follow_up: Callable[[str], None],
        keepalive_s: float = KEEPALIVE_S,
        hard_limit_s: float = HARD_LIMIT_S,
    ) -> None:
        self.link, self.req_id, self.stream_id = link, req_id, stream_id
        self.feedback_id = feedback_id
        self.follow_up = follow_up  # sends text by aibot_send_msg (through the outbox)
        self.keepalive_s, self.hard_limit_s = keepalive_s, hard_limit_s
        self.full = ""
        self.images: tuple[bytes, ...] = ()  # uploaded and sent after the stream
        self.card: dict[str, Any] | None = None  # sent after the stream and the files
        self.files: list[FileReply] = []
        self.cut = False  # finished early: the whole answer follows by aibot_send_msg
        self._sent = ""
        self._first_at: float | None = None
        self._lock = threading.Condition()
        self._done = False
        self._pump = threading.Thread(target=self._run, name="wecom-ws-stream", daemon=True)
        self._pump.start()

    def append(self, piece: str) -> None:
        with self._lock:
            self.full += piece
            self._lock.notify()

    def add_file(self, reply: FileReply) -> None:
        self.files.append(reply)

    def extras(self) -> list[FileReply]:
        """The files and pictures to send after the stream, in order."""
        return [*self.files, *pictures(self.images)]

    def finish(self, timeout: float = FINISH_WAIT_S) -> bool:
        """The final frame (or the follow-up), then the pump ends; whether it ended in
        `timeout` (the default covers every rate-limit wait and ack timeout of a frame)."""
        with self._lock:
            self._done = True
            self._lock.notify()
        self._pump.join(timeout)
        return not self._pump.is_alive()

    # -- the pump --------------------------------------------------------------------------------

    def _run(self) -> None:
        last_sent_at = time.monotonic()
        while True:
            with self._lock:
                while not self._done and self.full == self._sent:
                    now = time.monotonic()
                    if self._first_at is not None and (
                        now - last_sent_at >= self.keepalive_s
                        or now - self._first_at >= self.hard_limit_s
                    ):
                        break  # a keep-alive frame (the same text again), or the cut
                    self._lock.wait(max(self._wake_at(last_sent_at) - now, 0.05))
                text, done = self.full, self._done
            head, rest = split(text)
            if self.cut:
                break
            if self._first_at and time.monotonic() - self._first_at >= self.hard_limit_s:
                self._send(head + LATE_NOTICE, finish=True)
                self.cut = True
                break
            if not self._send(head, finish=done):
                self.cut = True
                break
            self._sent = text
            last_sent_at = time.monotonic()
            if done:
                if rest:
                    self.follow_up(rest)
                return
        self._follow_up_whole()

    def _wake_at(self, last_sent_at: float) -> float:
        """When the pump must act though the handler is silent: the next keep-alive, or the
        cut at the hard limit, whichever comes first."""
        wake = last_sent_at + self.keepalive_s
        if self._first_at is not None:
            wake = min(wake, self._first_at + self.hard_limit_s)
        return wake

    def _follow_up_whole(self) -> None:
        """After a cut: wait for the handler, then send the whole answer by aibot_send_msg."""
        with self._lock:
            while not self._done:
                self._lock.wait()
            text = self.full
        if text:
            self.follow_up(text)

    def _send(self, content: str, *, finish: bool) -> bool:
        """One frame; False when the stream cannot go on (expired, refused, disconnected)."""
        first = self._first_at is None
        body = stream_body(self.stream_id, content, finish=finish,
                           feedback_id=self.feedback_id if first else "")  # fmt: skip
        for wait in (*RATE_WAITS_S, None):
            try:
                self.link.request("aibot_respond_msg", body, req_id=self.req_id)
                break
            except AckError as exc:
                if exc.errcode == RATE_LIMITED and wait is not None:
                    time.sleep(wait)  # WeCom's 30 a minute per conversation: later
                    continue
                problem: Exception = exc
            except (LinkClosed, TimeoutError) as exc:
                problem = exc
            log.warning("stream %s: %s; the answer follows by aibot_send_msg",
                        self.stream_id, problem)  # fmt: skip
            return False
        if first:
            self._first_at = time.monotonic()
        return True
