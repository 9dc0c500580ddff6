"""The console's state, as one JSON document the page polls: members, the menu, each member's
chats with the apps and the AI bots, the timeline of callbacks and the dead letters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from callback.config import Settings
from callback.router import Route

from . import MEMBERS
from .chats import app_chats
from .conversations import bot_chats
from .sources import Sources
from .timeline import Parse, Resolve, dead_letters, timeline


@dataclass(frozen=True)
class MenuButton:
    """A custom-menu entry: the click key a handler registered, and a label for it."""

    key: str
    label: str
    app: str  # "" for every app
    handler: str


def label(key: str) -> str:
    """A button label for a click key: MENU_BOOK_ROOM -> "Book room"."""
    words = re.sub(r"^MENU_", "", key).replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:] if words else key


def menu(routes: Sequence[Route], apps: Sequence[str]) -> list[MenuButton]:
    """The click routes for these apps, in match order, each key once."""
    seen: dict[str, MenuButton] = {}
    for route in routes:
        key = route.pattern
        if route.kind != "click" or not isinstance(key, str) or key in seen:
            continue
        if route.app is None or route.app in apps:
            seen[key] = MenuButton(key, label(key), route.app or "", route.name)
    return list(seen.values())


@dataclass(frozen=True)
class ConsoleState:
    """Assembles the console's document from the records (nothing of its own is kept)."""

    settings: Settings
    sources: Sources
    parse: Parse
    resolve: Resolve
    routes: tuple[Route, ...]

    def receiving_apps(self) -> list[str]:
        return [name for name, app in self.settings.apps.items() if app.receives]

    def callback_bots(self) -> list[str]:
        return [name for name, bot in self.settings.bots.items() if bot.mode == "callback"]

    def document(self) -> dict[str, Any]:
        """Everything the page shows, from the store and the emulator right now."""
        records = self.sources.inbox()  # newest first
        oldest_first = list(reversed(records))
        emulator = self.sources.emulator()
        agents = {app.agent_id: name for name, app in self.settings.apps.items()}
        app_records = [r for r in oldest_first if r.app in self.settings.apps]
        chats = app_chats(app_records, emulator, agents)
        bots = bot_chats(oldest_first, self.callback_bots(), self.sources)
        bot_names = self.callback_bots()
        entries = timeline(records, self.parse, self.resolve, self.sources.outbox_of, bot_names)
        members = dict.fromkeys(MEMBERS)
        members |= dict.fromkeys(m for m in [*chats, *bots] if m and m != "@all")
        return {
            "sandbox": self.settings.sandbox,
            "apps": self.receiving_apps(),
            "bots": self.callback_bots(),
            "menu": [asdict(button) for button in menu(self.routes, self.receiving_apps())],
            "members": list(members),
            "chats": {m: [i.to_json() for i in items] for m, items in chats.items()},
            "bot_chats": {m: [i.to_json() for i in items] for m, items in bots.items()},
            "timeline": [e.to_json() for e in entries],
            "dead_letters": dead_letters(self.sources.dead_letters()),
            "emulator": {"url": self.sources.emulator_url, "error": emulator.error},
        }
