"""The holder: one process, of all that share the state store, holds a bot's long connection.

WeCom keeps one connection per bot: a new subscriber evicts the old one. So the processes of
every server configured for the bot elect one holder through a lease in the store; only the
holder connects, the others wait to take over when its lease runs out (it died). The holder
subscribes (a refused secret stops it: the config is wrong), pings every 30 s (two missed pings
end the connection), and reconnects with capped, jittered backoff. Evicted by someone else
(`disconnected_event`), it stops and says so loudly, and tells the other processes through the
store not to connect either for an hour, so two deployments never evict each other forever.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable

from callback.bots.link import AckError, Frame, Link, LinkClosed
from callback.config import BotSettings
from callback.store import Store

log = logging.getLogger("wecom.bots.connection")

LEASE_S = 30.0
PING_EVERY_S = 30.0
MISSED_PINGS = 2
BACKOFF_CAP_S = 30.0
EVICTED_FOR_S = 3600.0
REFUSED = 853000  # invalid bot_id or secret


class Holder:
    """Holds one bot's connection when elected; hands WeCom's callback frames to `dispatch`."""

    def __init__(
        self,
        bot: BotSettings,
        store: Store,
        dispatch: Callable[[Link, Frame], None],
        *,
        lease_s: float = LEASE_S,
        ping_every_s: float = PING_EVERY_S,
    ) -> None:
        self.bot = bot
        self.store = store
        self.dispatch = dispatch
        self.lease_s = lease_s
        self.ping_every_s = ping_every_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.link: Link | None = None
        self.stopped = threading.Event()
        self.evicted = threading.Event()
        self.refused = threading.Event()
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _lease(self) -> str:
        return f"connection:{self.bot.name}"

    def start(self) -> None:
        """Start trying to hold the connection (a thread; again after a fork)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._thread = threading.Thread(
            target=self._run, name=f"wecom-connection-{self.bot.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the connection and give the lease back (another process may take over)."""
        self.stopped.set()
        if self.link is not None:
            self.link.close()
        self.store.release(self._lease, self.owner)

    def holds(self) -> bool:
        """Whether this process holds the bot's connection now."""
        return self.link is not None and not self.link.closed.is_set()

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 1.0
        while not self.stopped.is_set():
            if self.store.get(f"evicted:{self.bot.name}") is not None:
                log.error("bot %s: another connection evicted ours; not connecting (restart "
                          "once the other one is stopped)", self.bot.name)  # fmt: skip
                self.stopped.wait(60)
                continue
            if not self.store.acquire(self._lease, self.owner, self.lease_s):
                self.stopped.wait(self.lease_s / 3)  # another process holds it
                continue
            try:
                self._hold()
                backoff = 1.0
            except AckError as exc:
                if exc.errcode == REFUSED:
                    self.refused.set()
                    name = self.bot.name
                    log.error("bot %s: WeCom refused bots.%s.bot_id or bots.%s.secret (%s); fix "
                              "the config (智能机器人 → the bot → API 模式 → 长连接); not "
                              "reconnecting", name, name, name, exc)  # fmt: skip
                    self.stop()
                    return
                log.warning("bot %s: %s", self.bot.name, exc)
            except (OSError, LinkClosed, TimeoutError) as exc:
                log.warning("bot %s: connection lost (%s); reconnecting in about %.0f s",
                            self.bot.name, type(exc).__name__, backoff)  # fmt: skip
            except Exception:
                log.exception("bot %s: connection failed", self.bot.name)
            finally:
                self.connected.clear()
                if self.link is not None:
                    self.link.close()
                    self.link = None
            if self.evicted.is_set() and not self.store.acquire(
                self._lease, self.owner, self.lease_s
            ):  # a peer took the lease while this loop stalled: its subscribe evicted ours
                log.warning(
                    "bot %s: a peer sharing the state store took the connection over while "
                    "this process stalled; it holds it now", self.bot.name,
                )  # fmt: skip
                self.evicted.clear()
            if self.evicted.is_set():
                log.error("bot %s: EVICTED by another connection for the same bot (another "
                          "server, another deployment?); this server stops connecting, and "
                          "so do the others sharing its state store, for an hour",
                          self.bot.name)  # fmt: skip
                self.store.put(f"evicted:{self.bot.name}", self.owner, EVICTED_FOR_S)
                self.store.release(self._lease, self.owner)
                return
            self.stopped.wait(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, BACKOFF_CAP_S)

    def _hold(self) -> None:
        """Connect, subscribe, then keep the lease and the pings going until the link ends."""
        self.link = link = Link(self.bot.ws_url, lambda frame: self._on_frame(link, frame))
        link.request("aibot_subscribe", {"bot_id": self.bot.bot_id, "secret": self.bot.secret})
        self.connected.set()
        log.info("bot %s: connected and subscribed (holder %s)", self.bot.name, self.owner)
        missed, last_ping = 0, time.monotonic()
        while not (self.stopped.is_set() or link.closed.is_set()):
            if not self.store.acquire(self._lease, self.owner, self.lease_s):
                log.warning("bot %s: lost the lease; closing", self.bot.name)
                return
            if time.monotonic() - last_ping >= self.ping_every_s:
                last_ping = time.monotonic()
                try:
                    link.request("ping")
                    missed = 0
                except TimeoutError:
                    missed += 1
                    if missed >= MISSED_PINGS:
                        raise
            link.closed.wait(min(self.lease_s / 3, self.ping_every_s / 3))

    def _on_frame(self, link: Link, frame: Frame) -> None:
        body = frame.get("body") or {}
        event = (body.get("event") or {}).get("eventtype") if isinstance(body, dict) else None
        if event == "disconnected_event":
            self.evicted.set()
            link.close()
            return
        self.dispatch(link, frame)
