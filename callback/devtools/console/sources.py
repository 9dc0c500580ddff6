"""What the console reads: the state store (inbox, outbox, AI-bot streams) and the WeCom
emulator's records (what it received through the send API), read over its control API."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from callback.bots.streams import Streams, StreamState, stream_id
from callback.config import DEFAULT_API_BASE_URL
from callback.devtools.emulator.control import EmulatorControl
from callback.store import Store
from callback.store.records import DEAD, InboxRecord, OutboxItem

#: How many callbacks the console shows (the newest).
RECENT = 100
#: ctx.send items per callback looked up (`KEY:send:0`, `KEY:send:1`, ...).
MAX_SENDS = 20


@dataclass(frozen=True)
class EmulatorRecords:
    """The emulator's message and card-update records (JSON forms); `error` says why they
    could not be read ("" when they were, or when there is no emulator)."""

    messages: tuple[Mapping[str, Any], ...] = ()
    updates: tuple[Mapping[str, Any], ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Sources:
    """The state store, and the emulator's base URL (None: the apps talk to real WeCom)."""

    store: Store
    emulator_url: str | None
    recent: int = RECENT

    def inbox(self) -> list[InboxRecord]:
        """The newest callbacks, newest first."""
        return self.store.inbox_recent(self.recent)

    def outbox_of(self, key: str) -> list[OutboxItem]:
        """The outbox items a callback caused: its pushed reply, then its ctx.send items."""
        found = [item for item in [self.store.outbox_get(f"{key}:reply")] if item is not None]
        for n in itertools.count():
            item = self.store.outbox_get(f"{key}:send:{n}")
            if item is None or n >= MAX_SENDS:
                break
            found.append(item)
        return found

    def dead_letters(self, limit: int = 50) -> list[OutboxItem]:
        """Outbox items kept dead (for `wecom outbox retry|drop`)."""
        return self.store.outbox_list([DEAD], limit)

    def stream(self, bot: str, msgid: str) -> StreamState | None:
        """An AI-bot message's stream as stored: what the member's refreshes show."""
        return Streams(self.store).get(stream_id(bot, msgid))

    def control(self) -> EmulatorControl | None:
        """A client of the emulator's control API, if there is an emulator."""
        return EmulatorControl(self.emulator_url, timeout=3.0) if self.emulator_url else None

    def emulator(self) -> EmulatorRecords:
        """What the emulator received (messages, card updates), or why it could not be read."""
        control = self.control()
        if control is None:
            return EmulatorRecords()
        try:
            # the newest only: the emulator keeps every message, the page polls every second
            messages, updates = control.messages(), control.updates()
            return EmulatorRecords(tuple(messages[-self.recent :]), tuple(updates[-self.recent :]))
        except (requests.RequestException, ValueError) as exc:
            return EmulatorRecords(error=f"the emulator at {self.emulator_url}: {exc}")


def emulator_url(api_base_urls: Sequence[str]) -> str | None:
    """The emulator the apps send to: the first API base URL that is not WeCom's own."""
    return next((url for url in api_base_urls if url != DEFAULT_API_BASE_URL), None)
