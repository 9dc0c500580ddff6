"""Held connections: a late answer waits here, a withheld answer never leaves.

The /cgi-bin/ view handles a call and leaves a HoldOrder in the WSGI environ; HoldingMiddleware,
outside Flask, then waits before passing the answer on (late answer) or, for a withheld answer,
waits for the client to give up, for the order's maximum or for a release, and closes the
connection without writing a byte. Each hold runs in its request's own server thread, so other
requests go on; releases (reset(), release_held(), the server stopping) end holds within POLL s.
"""

from __future__ import annotations

import contextlib
import itertools
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HOLD_KEY = "wecom_emulator.hold"
"""WSGI environ key under which the /cgi-bin/ view leaves its HoldOrder."""
POLL = 0.05
"""Seconds between checks for a release while a connection is held."""


class HoldEnd(StrEnum):
    """Why a hold ended."""

    ELAPSED = "elapsed"
    """A late answer's delay or a withheld answer's max_seconds ran out."""
    CLIENT_CLOSED = "client_closed"
    """The client closed the connection (gave up) while waiting for an answer."""
    RELEASED = "released"
    """reset(), release_held() or the server stopping ended it early."""


@dataclass(frozen=True)
class HoldOrder:
    """Hold this call's connection for `seconds`; answer afterwards, or close it without one.

    call_id names the emulator's record of a withheld answer (0: none).
    """

    seconds: float
    answer: bool
    call_id: int = 0


@dataclass(frozen=True)
class _Hold:
    released: threading.Event
    stopping: threading.Event | None


class Holds:
    """The connections held right now, to count them and release them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._active: dict[int, _Hold] = {}
        self._ids = itertools.count(1)

    def count(self) -> int:
        """How many connections are held right now."""
        with self._changed:
            return len(self._active)

    def release_all(self) -> int:
        """End every current hold early; returns how many there were."""
        with self._changed:
            for hold in self._active.values():
                hold.released.set()
            return len(self._active)

    def wait_idle(self, stopping: threading.Event | None, timeout: float) -> bool:
        """Wait until no hold watching `stopping` is left; False if timeout ran out first."""
        with self._changed:
            return self._changed.wait_for(
                lambda: all(h.stopping is not stopping for h in self._active.values()), timeout
            )

    def hold(
        self,
        seconds: float,
        *,
        client: socket.socket | None = None,
        stopping: threading.Event | None = None,
    ) -> HoldEnd:
        """Wait up to seconds, or until released, stopping is set or `client` closes its side."""
        hold = _Hold(threading.Event(), stopping)
        with self._changed:
            key = next(self._ids)
            self._active[key] = hold
        try:
            return _wait(hold, time.monotonic() + seconds, client)
        finally:
            with self._changed:
                del self._active[key]
                self._changed.notify_all()


def _wait(hold: _Hold, deadline: float, client: socket.socket | None) -> HoldEnd:
    with selectors.DefaultSelector() as selector:
        if client is not None:
            selector.register(client, selectors.EVENT_READ)
        while True:
            if hold.released.is_set() or (hold.stopping is not None and hold.stopping.is_set()):
                return HoldEnd.RELEASED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return HoldEnd.ELAPSED
            if client is None:
                hold.released.wait(min(POLL, remaining))
            elif selector.select(min(POLL, remaining)) and _closed(client):
                return HoldEnd.CLIENT_CLOSED


def _closed(client: socket.socket) -> bool:
    """Read what the client sent (and drop it); True once it has closed its side."""
    try:
        return not client.recv(65536)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


HoldRunner = Callable[[HoldOrder, "socket.socket | None", "threading.Event | None"], HoldEnd]
"""Emulator.hold: wait out a HoldOrder (client socket or None, server's stopping event)."""


class HoldingMiddleware:
    """WSGI middleware that carries out the HoldOrder a view left in the environ.

    Late answers: wait, then pass the answer on. Withheld answers: wait (watching the client's
    socket when the server is werkzeug's), shut the socket down and raise ConnectionAbortedError,
    which werkzeug's server treats as a dropped connection: no status line, no log line.
    """

    def __init__(
        self, app: WSGIApplication, run: HoldRunner, stopping: threading.Event | None = None
    ) -> None:
        self.app = app
        self.run = run
        self.stopping = stopping

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer = self.app(environ, start_response)
        order = environ.get(HOLD_KEY)
        if not isinstance(order, HoldOrder):
            return answer
        if order.answer:
            self.run(order, None, self.stopping)
            return answer
        _close(answer)
        client = environ.get("werkzeug.socket")
        client = client if isinstance(client, socket.socket) else None
        self.run(order, client, self.stopping)
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("the WeCom emulator withheld this answer")


def _close(answer: Any) -> None:
    close = getattr(answer, "close", None)
    if callable(close):
        close()
