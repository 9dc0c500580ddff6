"""What the console's buttons do: real signed, encrypted callbacks to this server, built and
posted exactly as `wecom simulate` does (the app's Simulator; WeCom's side of an AI bot,
AibotSide, for bot chats). Bad input is an ActionError (a 4xx), checked before anything goes."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from callback.config import Settings
from callback.devtools.aibot import AibotSide
from callback.devtools.simulator import Simulator
from callback.errors import WecomError

from .chats import reply_fields
from .sources import Sources

MEMBER_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
KEY_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
STREAM_RE = re.compile(r"s[0-9a-f]{20}")
MAX_TEXT_BYTES = 2048


class ActionError(ValueError):
    """Input the console refuses: `status` is the HTTP status (400, or 404 for unknown ones)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Fired:
    """A callback's outcome as WeCom saw it: status, time to answer, the decrypted reply."""

    status: int
    ms: float
    reply: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "ms": round(self.ms, 1), "reply": self.reply}


def text_field(body: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    """A required string field of an action's JSON body."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ActionError(f"{name}: required, a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise ActionError(f"{name}: {value[:40]!r} is not valid")
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise ActionError(f"{name}: at most {MAX_TEXT_BYTES} bytes")
    return value


@dataclass(frozen=True)
class Actions:
    """Fires callbacks at `base_url` (this server's own listener) as members of the corp."""

    settings: Settings
    sources: Sources

    def _simulator(self, app_name: str, member: str) -> Simulator:
        app = self.settings.apps.get(app_name)
        if app is None or not app.receives:
            raise ActionError(f"app: no app {app_name[:40]!r} that receives callbacks", 404)
        sim = Simulator.create(app.token, app.encoding_aes_key, app.corp_id, agent_id=app.agent_id)
        sim.user = member
        return sim

    def _post(self, base_url: str, app: str, sim: Simulator, fields: dict[str, Any]) -> Fired:
        url = f"{base_url}{self.settings.server.callback_prefix}/{app}"
        query, body = sim.post(fields)
        started = time.perf_counter()
        try:
            response = requests.post(url, params=query, data=body, timeout=10)
        except requests.RequestException as exc:
            raise ActionError(f"the callback could not be posted: {exc}", 502) from exc
        ms = (time.perf_counter() - started) * 1000
        reply = None
        if response.status_code == 200:
            try:
                plain = sim.open_reply(response.content)
                reply = reply_fields(plain) if plain else None
            except (WecomError, ValueError) as exc:
                raise ActionError(f"the passive reply could not be opened: {exc}", 502) from exc
        return Fired(response.status_code, ms, reply)

    def text(self, base_url: str, body: Mapping[str, Any]) -> Fired:
        """The member sends a text to the app."""
        app, member = text_field(body, "app"), text_field(body, "member", MEMBER_RE)
        sim = self._simulator(app, member)
        return self._post(base_url, app, sim, sim.text(text_field(body, "text")))

    def click(self, base_url: str, body: Mapping[str, Any]) -> Fired:
        """The member clicks a custom-menu entry."""
        app, member = text_field(body, "app"), text_field(body, "member", MEMBER_RE)
        sim = self._simulator(app, member)
        return self._post(base_url, app, sim, sim.click(text_field(body, "key", KEY_RE)))

    def card(self, base_url: str, body: Mapping[str, Any]) -> Fired:
        """The member clicks a card's button (or submits its votes and selects)."""
        app, member = text_field(body, "app"), text_field(body, "member", MEMBER_RE)
        msgid, key = text_field(body, "msgid", KEY_RE), text_field(body, "key", KEY_RE)
        selected = _selected(body.get("selected"))
        sim = self._simulator(app, member)
        control = self.sources.control()
        if control is None:
            raise ActionError("card buttons need the WeCom emulator (sandbox mode)", 409)
        try:
            sent = [m for m in control.messages(touser=member) if m.get("msgid") == msgid]
            card = (sent[0].get("body") or {}).get("template_card") if sent else None
            if not isinstance(card, dict):
                raise ActionError(f"msgid: no card {msgid!r} was sent to {member}", 404)
            if key not in card_keys(card):
                raise ActionError(f"key: the card has no button {key!r}")
            code = control.issue_response_code(msgid)
        except requests.RequestException as exc:
            raise ActionError(f"the emulator did not answer: {exc}", 502) from exc
        fields = sim.card_action(key, task_id=str(card.get("task_id", "")), selected=selected,
                                 card_type=str(card.get("card_type", "")))  # fmt: skip
        fields["ResponseCode"] = code  # as WeCom's click carries it, for update_template_card
        return self._post(base_url, app, sim, fields)

    def _side(self, base_url: str, body: Mapping[str, Any]) -> AibotSide:
        name, member = text_field(body, "bot"), text_field(body, "member", MEMBER_RE)
        bot = self.settings.bots.get(name)
        if bot is None or bot.mode != "callback":
            raise ActionError(f"bot: no AI bot {name[:40]!r} in callback mode", 404)
        url = f"{base_url}{self.settings.server.bot_prefix}/{name}"
        return AibotSide(url, bot.token, bot.encoding_aes_key, bot.bot_id, user=member,
                         strict=False, response_url_base=self.sources.emulator_url)  # fmt: skip

    def bot_text(self, base_url: str, body: Mapping[str, Any]) -> Fired:
        """The member writes to an AI bot: the first answer (its stream, as it starts)."""
        side = self._side(base_url, body)
        with side:
            exchange = side.post(side.text(text_field(body, "text")))
        return _bot_fired(exchange.status, exchange.elapsed_s, exchange.reply)

    def bot_refresh(self, base_url: str, body: Mapping[str, Any]) -> Fired:
        """WeCom's refresh of a stream, as the member's client asks about once a second."""
        side = self._side(base_url, body)
        stream = text_field(body, "stream_id", STREAM_RE)
        with side:
            exchange = side.post(side.refresh({}, stream), kind="refresh")
        return _bot_fired(exchange.status, exchange.elapsed_s, exchange.reply)


def _bot_fired(status: int | None, elapsed_s: float, reply: Mapping[str, Any] | None) -> Fired:
    if status is None:
        raise ActionError("the bot's callback got no answer", 502)
    return Fired(status, elapsed_s * 1000, dict(reply) if reply else None)


def _selected(value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 20:
        raise ActionError("selected: expected an object of question keys to option ids")
    out: dict[str, list[str]] = {}
    for question, options in value.items():
        if not KEY_RE.fullmatch(str(question)) or not isinstance(options, list):
            raise ActionError("selected: expected an object of question keys to option ids")
        if not all(isinstance(o, str) and KEY_RE.fullmatch(o) for o in options[:20]):
            raise ActionError(f"selected.{question}: option ids must be short strings")
        out[str(question)] = list(options[:20])
    return out


def card_keys(card: Mapping[str, Any]) -> set[str]:
    """The callback keys a template card's buttons carry (buttons, submit, menu entries)."""
    keys = {str(b.get("key")) for b in card.get("button_list") or [] if isinstance(b, dict)}
    for name in ("submit_button",):
        block = card.get(name)
        if isinstance(block, dict) and block.get("key"):
            keys.add(str(block["key"]))
    menu = card.get("action_menu")
    if isinstance(menu, dict):
        keys |= {str(a.get("key")) for a in menu.get("action_list") or [] if isinstance(a, dict)}
    return keys
