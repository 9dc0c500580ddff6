"""AibotConnectionServer: a WebSocket server (websockets, sync) playing WeCom's long-connection
endpoint wss://openws.work.weixin.qq.com on ws://127.0.0.1:PORT, from a background thread.

Each connection runs in its own thread: it reads a frame, hands it to the hub and sends the ack
before reading the next, so acks go out in arrival order; a connection that sends nothing for
idle_timeout_s is closed. State and records live in the Emulator's hub (`emulator.aibot_ws`), so
the emulator's control API sees them and `Emulator.reset()` clears them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from callback.devtools.served import Served

from .callbacks import WsCallbacks
from .hub import DEFAULT_BOT_ID, AibotWsHub
from .knobs import WsKnobs

if TYPE_CHECKING:
    from ..state import Emulator

MAX_FRAME_BYTES = 8 << 20
"""Largest frame read (a 512 KiB chunk in base64 is about 700 KB)."""
CLOSE_TIMEOUT_S = 1.0
_QUIET = logging.getLogger("wecom_emulator.aibot_ws")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


class _Link:
    """The hub's view of one ServerConnection."""

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws

    def send(self, text: str) -> bool:
        try:
            self._ws.send(text)
        except (ConnectionClosed, OSError, RuntimeError):
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            self._ws.close(code, reason)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._ws.socket.shutdown(socket.SHUT_RDWR)


class AibotConnectionServer(Served):
    """Serve AI bots' long connections for an Emulator on host:port (0 = a free port).

    with EmulatorServer(emulator) as http, AibotConnectionServer(
        emulator, knobs=WsKnobs(response_url_base=http.url, idle_timeout_s=2)
    ) as ws:
        client connects to ws.url, subscribes with DEFAULT_BOT_ID / DEFAULT_BOT_SECRET
        req_id = ws.send_message(DEFAULT_BOT_ID, ws.callbacks().text("hello"))
        ws.hub.conversation(DEFAULT_BOT_ID, "zhangsan").streams

    knobs and bots, when given, become the hub's defaults (what reset() returns to).
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        knobs: WsKnobs | None = None,
        bots: Mapping[str, str] | None = None,
    ) -> None:
        if emulator is None:
            from ..state import Emulator

            emulator = Emulator()
        self.emulator = emulator
        self.hub: AibotWsHub = emulator.aibot_ws
        if knobs is not None or bots is not None:
            self.hub.use_defaults(knobs=knobs, bots=bots)
        self._stopping = threading.Event()
        self._mine: set[int] = set()
        self._mine_lock = threading.Lock()
        self._server: Server = serve(
            self._handle,
            host,
            port,
            compression=None,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=MAX_FRAME_BYTES,
            logger=_QUIET,
        )

    @property
    def host(self) -> str:
        """The bound host."""
        return str(self._server.socket.getsockname()[0])

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.socket.getsockname()[1])

    @property
    def url(self) -> str:
        """ws://host:port, to use instead of wss://openws.work.weixin.qq.com."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def _serve(self) -> None:
        self._server.serve_forever()

    def _name(self) -> str:
        return f"aibot-ws-{self.port}"

    def stop(self) -> None:
        """Close every connection (code 1001) and stop listening."""
        with self._mine_lock:
            mine = list(self._mine)
        for conn_id in mine:
            self.hub.closing(conn_id, "server_stop")
        self._stopping.set()
        self._server.shutdown()
        self._join()

    # -- the tests' side, delegated to the hub -------------------------------------------

    def callbacks(self, bot_id: str = DEFAULT_BOT_ID, *, user: str = "zhangsan") -> WsCallbacks:
        """A builder of callback bodies for bot_id (media items take a per-URL aeskey)."""
        return WsCallbacks(bot_id, user=user, clock=self.emulator.now)

    def send_message(self, bot_id: str, body: Mapping[str, Any]) -> str:
        """aibot_msg_callback to the bot's connection; returns the new req_id."""
        return self.hub.send_message(bot_id, body)

    def send_event(self, bot_id: str, body: Mapping[str, Any]) -> str:
        """aibot_event_callback to the bot's connection; returns the new req_id."""
        return self.hub.send_event(bot_id, body)

    # -- the connections -----------------------------------------------------------------

    def _handle(self, ws: ServerConnection) -> None:
        peer = ws.remote_address
        conn_id = self.hub.open(_Link(ws), f"{peer[0]}:{peer[1]}" if peer else "?")
        with self._mine_lock:
            self._mine.add(conn_id)
        try:
            self._converse(ws, conn_id)
        finally:
            self.hub.closed(conn_id, "client")
            with self._mine_lock:
                self._mine.discard(conn_id)

    def _converse(self, ws: ServerConnection, conn_id: int) -> None:
        last = time.monotonic()
        while True:
            idle = self.hub.knobs().idle_timeout_s
            try:
                data = ws.recv(timeout=max(0.0, last + idle - time.monotonic()))
            except TimeoutError:
                self.hub.closing(conn_id, "idle")
                ws.close(1000, "heartbeat timeout")
                return
            except ConnectionClosed:
                return
            last = time.monotonic()
            for out in self.hub.handle(conn_id, data):
                if out.delay_s and self._stopping.wait(out.delay_s):
                    ws.close(1001, "server stopping")
                    return
                if out.drop:
                    continue
                try:
                    ws.send(out.text)
                except ConnectionClosed:
                    return
