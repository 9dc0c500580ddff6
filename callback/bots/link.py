"""The link: one WebSocket to WeCom for an AI bot in connection mode, as JSON frames.

Frames are `{"cmd", "headers": {"req_id"}, "body"}`; WeCom acks each of ours with a frame that
has the same req_id and no cmd. Replies to one callback share the callback's req_id, so frames
on one req_id go one at a time, each after the ack of the one before (or after its 5-s ack
timeout): acks then match their frames in order. Frames WeCom starts (callbacks) are handed to
`on_frame` on the link's reader thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from callback.errors import WecomError

log = logging.getLogger("wecom.bots.link")

ACK_TIMEOUT_S = 5.0
Frame = dict[str, Any]


class LinkClosed(WecomError):
    """The WebSocket closed (or was never open): nothing more can be sent on it. `sent` says
    whether the frame of the request that failed had gone out (WeCom may have acted on it)."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class AckError(WecomError):
    """WeCom answered a frame with a non-zero errcode (846605 invalid req_id, 846608 stream
    expired, 853000 bad credentials...)."""

    def __init__(self, errcode: int, errmsg: str, cmd: str) -> None:
        super().__init__(f"{cmd}: errcode {errcode}: {errmsg}", code=errcode)
        self.errcode, self.errmsg, self.cmd = errcode, errmsg, cmd


class _Turn:
    """The lock that orders the frames of one req_id (forgotten once nobody holds it)."""

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


def new_req_id(prefix: str) -> str:
    """A req_id of ours, as the official SDK makes them: prefix, milliseconds, 8 hex."""
    return f"{prefix}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


class Link:
    """One open WebSocket; thread-safe; `close()` ends it and fails every waiting frame."""

    def __init__(self, url: str, on_frame: Callable[[Frame], None], open_timeout: float = 10.0):
        self.on_frame = on_frame
        self._stack = contextlib.ExitStack()  # `with connect(...)` works on every websockets
        self._ws: ClientConnection = self._stack.enter_context(
            connect(url, open_timeout=open_timeout, max_size=2**24)
        )
        self._send_lock = threading.Lock()
        self._waiting: dict[str, deque[tuple[str, Future[Frame]]]] = defaultdict(deque)
        self._turns: weakref.WeakValueDictionary[str, _Turn] = weakref.WeakValueDictionary()
        self._state_lock = threading.Lock()
        self.closed = threading.Event()
        self.last_frame_at = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="wecom-link", daemon=True)
        self._reader.start()

    # -- sending ---------------------------------------------------------------------------------

    def request(
        self, cmd: str, body: Frame | None = None, *, req_id: str | None = None,
        timeout: float = ACK_TIMEOUT_S,
    ) -> Frame:  # fmt: skip
        """Send one frame and wait for its ack (on a callback's req_id: after the frames before
        it on that req_id). Raises AckError for a non-zero errcode, TimeoutError when no ack
        comes in `timeout`, LinkClosed when the link is gone."""
        req_id = req_id or new_req_id(cmd)
        turn = self._turn(req_id)  # held here: frames on one req_id wait for each other
        with turn.lock:
            future: Future[Frame] = Future()
            with self._state_lock:
                if self.closed.is_set():
                    raise LinkClosed("the connection to WeCom is closed", sent=False)
                self._waiting[req_id].append((cmd, future))
            frame: Frame = {"cmd": cmd, "headers": {"req_id": req_id}}
            if body is not None:
                frame["body"] = body
            try:
                with self._send_lock:
                    self._ws.send(json.dumps(frame, ensure_ascii=False))
            except ConnectionClosed as exc:
                self._fail_all(LinkClosed(f"the connection to WeCom closed ({exc})"))
                raise LinkClosed(f"the connection to WeCom closed ({exc})", sent=False) from None
            try:
                ack = future.result(timeout)
            except TimeoutError:
                self._forget(req_id, future)
                raise TimeoutError(f"{cmd}: no ack from WeCom within {timeout:g} s") from None
        code = int(ack.get("errcode", 0))
        if code:
            raise AckError(code, str(ack.get("errmsg", "")), cmd)
        return ack

    def _turn(self, req_id: str) -> _Turn:
        with self._state_lock:
            turn = self._turns.get(req_id)
            if turn is None:
                turn = self._turns[req_id] = _Turn()
            return turn

    def _forget(self, req_id: str, future: Future[Frame]) -> None:
        with self._state_lock:
            rest = deque(w for w in self._waiting.get(req_id, ()) if w[1] is not future)
            if rest:
                self._waiting[req_id] = rest
            else:
                self._waiting.pop(req_id, None)

    # -- receiving -------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for raw in self._ws:
                self.last_frame_at = time.monotonic()
                try:
                    frame = json.loads(raw)
                except ValueError:
                    log.warning("a frame from WeCom is not JSON; ignored")
                    continue
                if not isinstance(frame, dict):
                    continue
                if "cmd" in frame:
                    try:
                        self.on_frame(frame)
                    except Exception:
                        log.exception("handling a %s frame failed", frame.get("cmd"))
                else:
                    self._ack(frame)
        except ConnectionClosed as exc:
            log.info("the connection to WeCom closed: %s", exc)
        finally:
            self._fail_all(LinkClosed("the connection to WeCom closed"))

    def _ack(self, frame: Frame) -> None:
        req_id = str((frame.get("headers") or {}).get("req_id", ""))
        with self._state_lock:
            queue = self._waiting.get(req_id)
            waiter = queue.popleft() if queue else None
            if queue is not None and not queue:
                del self._waiting[req_id]
        if waiter is None:
            log.debug("an ack for req_id %s that nothing waits for", req_id)
            return
        waiter[1].set_result(frame)

    def _fail_all(self, error: WecomError) -> None:
        with self._state_lock:
            self.closed.set()
            waiting, self._waiting = self._waiting, defaultdict(deque)
        for queue in waiting.values():
            for _, future in queue:
                if not future.done():
                    future.set_exception(error)

    def close(self) -> None:
        """Close the WebSocket (the reader thread ends; waiting frames fail)."""
        try:
            self._stack.close()
        finally:
            self._fail_all(LinkClosed("the connection to WeCom was closed here"))
