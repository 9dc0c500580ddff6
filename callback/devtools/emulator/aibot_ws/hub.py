"""AibotWsHub: the WeCom side of AI bots' long connections, without the sockets (§3, §8.2).

The transport (AibotConnectionServer) hands every connection's frames to handle() and sends the
acks it returns; tests drive callbacks with send_message()/send_event() and read what happened.
Everything is behind one lock; sends to sockets happen outside it.
"""

from __future__ import annotations

import hmac
import itertools
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ..errors import INVALID_PARAMETER, ApiError, base_errmsg
from ..fields import JsonObject
from .bodies import (
    body_of,
)
from .callbacks import Register, fill_callback
from .knobs import WsKnobs
from .records import (
    WsCallback,
    WsConnection,
    WsConversation,
    WsEviction,
    WsFrame,
    WsMedia,
    WsRefusal,
)
from .replies import Replies
from .uploads import finish_body

DEFAULT_BOT_ID = "aibTESTBOT0001"
DEFAULT_BOT_SECRET = "emulator-bot-secret"  # noqa: S105 (a fake credential)
BAD_CREDENTIALS = 853000


class Link(Protocol):
    """One socket as the hub sees it (implemented by the server)."""

    def send(self, text: str) -> bool:
        """Send a text frame; False when the connection is gone."""

    def close(self, code: int, reason: str) -> None:
        """Close with a close frame."""

    def abort(self) -> None:
        """Cut the TCP connection without a close frame."""


class NotConnected(LookupError):
    """No open, subscribed connection for the bot (callbacks are not queued or replayed)."""


@dataclass(frozen=True)
class Outgoing:
    """An ack for the transport: send text after delay_s, unless drop."""

    text: str
    delay_s: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class AckFault:
    """The next `remaining` frames (of cmd, None = any) are answered errcode without being
    handled ("error"), handled with the ack never sent ("drop"), or acked `seconds` late."""

    kind: Literal["error", "drop", "delay"]
    remaining: int
    cmd: str | None = None
    errcode: int = -1
    seconds: float = 0.0


def _dumps(frame: Mapping[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def _ack(req_id: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"headers": {"req_id": req_id}}
    if body is not None:
        frame["body"] = dict(body)
    return frame | {"errcode": 0, "errmsg": "ok"}


def _errmsg(error: ApiError) -> str:
    base = base_errmsg(error.errcode)
    return f"{base}: {error.detail}" if error.detail else base


def _parse(data: str | bytes) -> tuple[dict[str, Any] | None, str | None, str]:
    """(frame, problem, text): problem names what makes the frame unusable."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    try:
        frame = json.loads(text)
    except ValueError:
        return None, "the frame is not JSON", text
    if not isinstance(frame, dict):
        return None, "a frame is a JSON object", text
    headers = frame.get("headers")
    req_id = headers.get("req_id") if isinstance(headers, dict) else None
    if not isinstance(req_id, str) or not req_id:
        return frame, "headers.req_id is required", text
    if not isinstance(frame.get("cmd"), str):
        return frame, "cmd is required", text
    return frame, None, text


def _req_id_of(frame: Mapping[str, Any] | None) -> str:
    headers = None if frame is None else frame.get("headers")
    value = headers.get("req_id") if isinstance(headers, dict) else None
    return value if isinstance(value, str) else ""


class AibotWsHub:
    """Bots, connections, callbacks and what every member saw; thread-safe."""

    def __init__(self, clock: Callable[[], float], register: Register | None = None) -> None:
        self._clock = clock
        self._register = register
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._default_knobs = WsKnobs()
        self._default_bots: dict[str, str] = {DEFAULT_BOT_ID: DEFAULT_BOT_SECRET}
        self._conn_ids = itertools.count(1)
        self._links: dict[int, Link] = {}
        self._timers: dict[int, threading.Timer] = {}
        self.reset()

    # -- configuration -------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the default bots and knobs with no records; open connections are closed
        (code 1001), their records dropped."""
        with self._lock:
            links = list(self._links.values())
            timers = list(self._timers.values())
            self._links, self._timers = {}, {}
            self._knobs = self._default_knobs
            self._bots = dict(self._default_bots)
            self._conns: dict[int, WsConnection] = {}
            self._active: dict[str, int] = {}
            self._evictions: list[WsEviction] = []
            self._frames: list[WsFrame] = []
            self._rules = Replies(lambda: self._knobs)
            self._refusals: list[WsRefusal] = []
            self._faults: list[AckFault] = []
            self._changed.notify_all()
        for timer in timers:
            timer.cancel()
        for link in links:
            link.close(1001, "emulator reset")

    def use_defaults(
        self, *, knobs: WsKnobs | None = None, bots: Mapping[str, str] | None = None
    ) -> None:
        """Make knobs and/or bots the ones reset() returns to, and use them now."""
        with self._lock:
            if knobs is not None:
                self._default_knobs = self._knobs = knobs
            if bots is not None:
                self._default_bots = dict(bots)
                self._bots = dict(bots)

    def knobs(self) -> WsKnobs:
        """The knobs in force."""
        with self._lock:
            return self._knobs

    def set_knobs(self, **changes: Any) -> WsKnobs:
        """Change knobs by name (until reset()); returns the knobs in force."""
        with self._lock:
            self._knobs = self._knobs.changed(changes)
            return self._knobs

    def add_bot(self, bot_id: str, secret: str) -> None:
        """Register a bot's BotID and long-connection Secret (until reset())."""
        if not isinstance(bot_id, str) or not bot_id or not isinstance(secret, str) or not secret:
            raise ValueError("a bot needs a non-empty bot_id and secret")
        with self._lock:
            if bot_id in self._bots:
                raise ValueError(f"bot {bot_id} is already registered")
            self._bots[bot_id] = secret

    def bots(self) -> dict[str, str]:
        """bot_id -> secret."""
        with self._lock:
            return dict(self._bots)

    # -- faults --------------------------------------------------------------------------

    def fail_frames(self, count: int = 1, *, errcode: int, cmd: str | None = None) -> None:
        """Answer the next count frames (of cmd) with errcode instead of handling them."""
        self._add_fault(AckFault("error", count, cmd, errcode=errcode))

    def drop_acks(self, count: int = 1, *, cmd: str | None = None) -> None:
        """Handle the next count frames (of cmd) but never send their acks."""
        self._add_fault(AckFault("drop", count, cmd))

    def delay_acks(self, count: int = 1, *, ms: float, cmd: str | None = None) -> None:
        """Handle the next count frames (of cmd) at once, send each ack ms later (the
        connection's later frames wait behind it, so acks stay in order)."""
        if not 0 < ms <= 600_000:
            raise ValueError("ms must be more than 0 and at most 600000")
        self._add_fault(AckFault("delay", count, cmd, seconds=ms / 1000))

    def _add_fault(self, fault: AckFault) -> None:
        if isinstance(fault.remaining, bool) or fault.remaining < 1:
            raise ValueError("count must be at least 1")
        if fault.kind == "error" and fault.errcode == 0:
            raise ValueError("errcode must not be 0")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, cmd: str | None) -> AckFault | None:
        for index, fault in enumerate(self._faults):
            if fault.cmd not in (None, cmd):
                continue
            if fault.remaining > 1:
                self._faults[index] = replace(fault, remaining=fault.remaining - 1)
            else:
                del self._faults[index]
            return fault
        return None

    # -- the transport's side ------------------------------------------------------------

    def open(self, link: Link, peer: str) -> int:
        """A new connection; returns its id."""
        with self._lock:
            conn_id = next(self._conn_ids)
            self._links[conn_id] = link
            self._conns[conn_id] = WsConnection(conn_id, peer, self._clock())
            self._changed.notify_all()
            return conn_id

    def closing(self, conn_id: int, reason: str) -> None:
        """Say why a connection is about to close (the first reason given wins)."""
        with self._lock:
            conn = self._conns.get(conn_id)
            if conn is not None and conn.close_reason is None:
                self._conns[conn_id] = replace(conn, close_reason=reason)

    def closed(self, conn_id: int, reason: str = "client") -> None:
        """The connection is gone."""
        with self._lock:
            self._links.pop(conn_id, None)
            timer = self._timers.pop(conn_id, None)
            conn = self._conns.get(conn_id)
            if conn is not None and conn.closed_at is None:
                if conn.bot_id is not None and self._active.get(conn.bot_id) == conn_id:
                    del self._active[conn.bot_id]
                self._conns[conn_id] = replace(
                    conn, closed_at=self._clock(), close_reason=conn.close_reason or reason
                )
            self._changed.notify_all()
        if timer is not None:
            timer.cancel()

    def connection_ids(self) -> list[int]:
        """Ids of the open connections."""
        with self._lock:
            return list(self._links)

    def handle(self, conn_id: int, data: str | bytes) -> list[Outgoing]:
        """One frame from a connection; the ack(s) to send back, in order."""
        after: list[Callable[[], None]] = []
        with self._lock:
            conn = self._conns.get(conn_id)
            if conn is None or conn_id not in self._links:
                return []
            now = self._clock()
            self._conns[conn_id] = replace(conn, frames_in=conn.frames_in + 1)
            frame, problem, text = _parse(data)
            self._log(conn_id, "in", text if frame is None else frame, now)
            req_id = _req_id_of(frame)
            cmd = frame.get("cmd") if frame is not None else None
            cmd = cmd if isinstance(cmd, str) else None
            fault = self._take_fault(cmd)
            self._rules.current = None
            try:
                if problem is not None:
                    raise ApiError(INVALID_PARAMETER, problem)
                assert frame is not None and cmd is not None
                if fault is not None and fault.kind == "error":
                    raise ApiError(fault.errcode, "injected fault")
                ack = _ack(req_id, self._dispatch(conn_id, cmd, frame, now, after))
            except ApiError as error:
                ack = {"headers": {"req_id": req_id}, "errcode": error.errcode}
                ack["errmsg"] = _errmsg(error)
                self._refuse(conn_id, cmd, req_id, error, frame, now)
            drop = fault is not None and fault.kind == "drop"
            delay = fault.seconds if fault is not None and fault.kind == "delay" else 0.0
            self._log(conn_id, "dropped" if drop else "out", ack, now)
            self._changed.notify_all()
        for action in after:
            action()
        return [Outgoing(_dumps(ack), delay, drop)]

    def _log(
        self,
        conn_id: int,
        direction: Literal["in", "out", "dropped"],
        frame: Mapping[str, Any] | str,
        now: float,
    ) -> None:
        self._frames.append(WsFrame(conn_id, direction, frame, now))

    def _refuse(
        self,
        conn_id: int,
        cmd: str | None,
        req_id: str,
        error: ApiError,
        frame: Mapping[str, Any] | None,
        now: float,
    ) -> None:
        body = frame.get("body") if frame is not None else None
        key = self._rules.current
        refusal = WsRefusal(
            conn_id,
            cmd,
            req_id or None,
            error.errcode,
            _errmsg(error),
            body if isinstance(body, dict) else None,
            now,
            self._conns[conn_id].bot_id,
            None if key is None else key[2],
        )
        self._refusals.append(refusal)
        if key is not None:
            self._rules.conversation(key).refused.append(refusal)

    def _dispatch(
        self,
        conn_id: int,
        cmd: str,
        frame: Mapping[str, Any],
        now: float,
        after: list[Callable[[], None]],
    ) -> Mapping[str, Any] | None:
        if cmd == "ping":
            return None
        if cmd == "aibot_subscribe":
            self._subscribe(conn_id, body_of(frame), now, after)
            return None
        bot_id = self._conns[conn_id].bot_id
        if bot_id is None:
            raise ApiError(BAD_CREDENTIALS, "not subscribed: send aibot_subscribe first")
        req_id = _req_id_of(frame)
        callback = self._rules.callbacks.get(req_id)
        bound = callback is not None and callback.bot_id == bot_id and callback.chatid
        if cmd.startswith("aibot_respond_") and callback is not None and bound:
            self._rules.current = (bot_id, callback.chattype, callback.chatid)
        body = body_of(frame)
        knobs = self._knobs
        if cmd == "aibot_respond_msg":
            self._rules.respond_msg(bot_id, req_id, body, now)
        elif cmd == "aibot_respond_welcome_msg":
            self._rules.respond_welcome(bot_id, req_id, body, now)
        elif cmd == "aibot_respond_update_msg":
            self._rules.respond_update(bot_id, req_id, body, now)
        elif cmd == "aibot_send_msg":
            self._rules.push(bot_id, body, now)
        elif cmd == "aibot_upload_media_init":
            return self._rules.uploads.init(bot_id, body, now, knobs)
        elif cmd == "aibot_upload_media_chunk":
            self._rules.uploads.chunk(bot_id, body, now, knobs)
        elif cmd == "aibot_upload_media_finish":
            return finish_body(self._rules.uploads.finish(bot_id, body, now, knobs))
        else:
            raise ApiError(INVALID_PARAMETER, f"unknown cmd {cmd!r}")
        return None

    # -- subscribe and eviction ----------------------------------------------------------

    def _subscribe(
        self, conn_id: int, body: JsonObject, now: float, after: list[Callable[[], None]]
    ) -> None:
        bot_id, secret = body.get("bot_id"), body.get("secret")
        known = self._bots.get(bot_id) if isinstance(bot_id, str) else None
        if known is None or not isinstance(secret, str) or not hmac.compare_digest(known, secret):
            raise ApiError(BAD_CREDENTIALS, "")
        assert isinstance(bot_id, str)
        conn = self._conns[conn_id]
        if conn.bot_id == bot_id:
            return
        if conn.bot_id is not None:
            raise ApiError(INVALID_PARAMETER, "this connection is subscribed to another bot")
        old_id = self._active.get(bot_id)
        self._conns[conn_id] = replace(conn, bot_id=bot_id, subscribed_at=now)
        self._active[bot_id] = conn_id
        if old_id is not None and old_id in self._links:
            self._evict(bot_id, old_id, conn_id, now, after)

    def _evict(
        self, bot_id: str, old_id: int, new_id: int, now: float, after: list[Callable[[], None]]
    ) -> None:
        req_id = secrets.token_urlsafe(18)
        body = {
            "msgid": secrets.token_hex(16),
            "create_time": int(now),
            "aibotid": bot_id,
            "msgtype": "event",
            "event": {"eventtype": "disconnected_event"},
        }
        self._rules.callbacks[req_id] = WsCallback(
            req_id, "disconnected_event", bot_id, old_id, body, now, "single", ""
        )
        frame = {"cmd": "aibot_event_callback", "headers": {"req_id": req_id}, "body": body}
        self._log(old_id, "out", frame, now)
        self._evictions.append(WsEviction(bot_id, old_id, new_id, now, req_id))
        old = self._conns[old_id]
        self._conns[old_id] = replace(old, evicted_at=now, close_reason="evicted")
        link = self._links[old_id]
        delay, abrupt = self._knobs.evict_delay_s, self._knobs.evict_close == "abrupt"

        def close() -> None:
            if abrupt:
                link.abort()
            else:
                link.close(1000, "evicted by a newer connection")

        def send_then_close() -> None:
            link.send(_dumps(frame))
            timer = threading.Timer(delay, close)
            timer.daemon = True
            with self._lock:
                if old_id not in self._links:
                    return
                self._timers[old_id] = timer
            timer.start()

        after.append(send_then_close)

    # -- callbacks -----------------------------------------------------------------------

    def send_message(self, bot_id: str, body: Mapping[str, Any]) -> str:
        """Send an aibot_msg_callback with a new req_id to the bot's connection; returns the
        req_id. msgid and aibotid are filled in when missing, and a response_url (registered
        with the Emulator) on every message. NotConnected if the bot has no connection."""
        return self._send_callback(bot_id, body, "aibot_msg_callback")

    def send_event(self, bot_id: str, body: Mapping[str, Any]) -> str:
        """Send an aibot_event_callback (enter_chat, template_card_event, feedback_event; body
        as §2.6) with a new req_id; msgid, create_time, aibotid and (template_card_event) a
        response_url are filled in when missing. Returns the req_id."""
        return self._send_callback(bot_id, body, "aibot_event_callback")

    def _send_callback(self, bot_id: str, body: Mapping[str, Any], cmd: str) -> str:
        with self._lock:
            conn_id = self._active.get(bot_id)
            link = None if conn_id is None else self._links.get(conn_id)
            if conn_id is None or link is None:
                raise NotConnected(f"bot {bot_id} has no open subscribed connection")
            now = self._clock()
            kind, fields = fill_callback(
                bot_id, body, cmd, now, self._knobs.response_url_base, self._register
            )
            chattype = str(fields["chattype"]) if "chattype" in fields else "single"
            userid = fields["from"]["userid"]
            chatid = str(fields["chatid"]) if chattype == "group" else userid
            task_id = None
            if kind == "template_card_event":
                event_body = fields["event"].get("template_card_event")
                value = event_body.get("task_id") if isinstance(event_body, dict) else None
                task_id = value if isinstance(value, str) else None
            req_id = secrets.token_urlsafe(18)
            self._rules.callbacks[req_id] = WsCallback(
                req_id, kind, bot_id, conn_id, fields, now, chattype, chatid, task_id
            )
            self._rules.conversation((bot_id, chattype, chatid))
            frame = {"cmd": cmd, "headers": {"req_id": req_id}, "body": fields}
            self._log(conn_id, "out", frame, now)
        if not link.send(_dumps(frame)):
            raise NotConnected(f"the connection of bot {bot_id} closed")
        return req_id

    # -- driving the connection ----------------------------------------------------------

    def drop_connection(self, bot_id: str) -> bool:
        """Cut the bot's connection without a close frame (a network loss); False if none."""
        with self._lock:
            conn_id = self._active.get(bot_id)
            link = None if conn_id is None else self._links.get(conn_id)
            if conn_id is None or link is None:
                return False
            self.closing(conn_id, "dropped")
        link.abort()
        return True

    # -- reading -------------------------------------------------------------------------

    def connections(self, bot_id: str | None = None) -> list[WsConnection]:
        """Every connection since reset() in order, optionally only those of bot_id."""
        with self._lock:
            return [c for c in self._conns.values() if bot_id in (None, c.bot_id)]

    def active_connection(self, bot_id: str) -> WsConnection | None:
        """The connection callbacks of bot_id go to, if any."""
        with self._lock:
            conn_id = self._active.get(bot_id)
            return None if conn_id is None else self._conns[conn_id]

    def evictions(self, bot_id: str | None = None) -> list[WsEviction]:
        """Every eviction in order."""
        with self._lock:
            return [e for e in self._evictions if bot_id in (None, e.bot_id)]

    def frames(self, conn_id: int | None = None) -> list[WsFrame]:
        """Every frame in and out, in order, optionally of one connection."""
        with self._lock:
            return [f for f in self._frames if conn_id in (None, f.conn_id)]

    def callbacks(self, bot_id: str | None = None) -> list[WsCallback]:
        """The callbacks sent, with their req_id binding and responses."""
        with self._lock:
            return [c for c in self._rules.callbacks.values() if bot_id in (None, c.bot_id)]

    def conversations(self, bot_id: str | None = None) -> list[WsConversation]:
        """Every conversation (a callback or a push touched it), in order of first contact."""
        with self._lock:
            return [c.frozen() for c in self._rules.convs.values() if bot_id in (None, c.key[0])]

    def conversation(self, bot_id: str, chatid: str, chattype: str | None = None) -> WsConversation:
        """One conversation: chatid is the group chatid or the single chat's userid."""
        with self._lock:
            for (bot, kind, chat), conv in self._rules.convs.items():
                if (bot, chat) == (bot_id, chatid) and chattype in (None, kind):
                    return conv.frozen()
        raise KeyError(f"no conversation {chatid} of bot {bot_id}")

    def refusals(self, bot_id: str | None = None) -> list[WsRefusal]:
        """Every frame answered with a non-zero errcode, in order."""
        with self._lock:
            return [r for r in self._refusals if bot_id in (None, r.bot_id)]

    def media(self, bot_id: str | None = None) -> list[WsMedia]:
        """Media uploaded over the long connection."""
        with self._lock:
            return [m for m in self._rules.uploads.media.values() if bot_id in (None, m.bot_id)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until predicate() (called under the lock) holds; False after timeout."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def wait_connected(self, bot_id: str, timeout: float = 5.0) -> WsConnection:
        """Wait for an open subscribed connection of bot_id; TimeoutError otherwise."""
        if not self.wait_for(lambda: bot_id in self._active, timeout):
            raise TimeoutError(f"bot {bot_id} did not subscribe within {timeout} s")
        connection = self.active_connection(bot_id)
        assert connection is not None
        return connection

    def wait_closed(self, conn_id: int, timeout: float = 5.0) -> WsConnection:
        """Wait until connection conn_id is closed; TimeoutError otherwise."""

        def gone() -> bool:
            conn = self._conns.get(conn_id)
            return conn is None or conn.closed_at is not None

        if not self.wait_for(gone, timeout):
            raise TimeoutError(f"connection {conn_id} still open after {timeout} s")
        with self._lock:
            return self._conns[conn_id]
