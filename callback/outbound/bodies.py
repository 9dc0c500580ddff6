"""Request bodies: message/send (envelope rules per msgtype), update_template_card and recall."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callback.outbound.cards import TemplateCard
from callback.outbound.checks import fail, flag, identifier, text
from callback.outbound.messages import Message, Text
from callback.outbound.recipients import Recipients

MAX_DUPLICATE_CHECK_S = 4 * 3600
AGENT_MISSING = 41011
BAD_AGENT = 40056
NEWS_NOT_SAFE = 40074


def build_send_body(
    message: Message,
    to: Recipients,
    agent_id: int | None,
    *,
    safe: int = 0,
    enable_id_trans: bool = False,
    enable_duplicate_check: bool = False,
    duplicate_check_interval: int = 1800,
) -> dict[str, Any]:
    """The JSON body of message/send for one message.

    miniprogram_notice gets neither agentid nor safe (agent_id is ignored) and refuses @all; every
    other type needs agent_id. Text over 2048 bytes is refused: use `build_send_bodies`.
    """
    if not isinstance(message, Message) or not message.msgtype:
        fail("msgtype", message, "is not a message", "a Text, Markdown, … or TemplateCard value")
    message.check_sendable()
    kind = message.msgtype
    if message.uses_agent:
        if agent_id is None:
            fail("agentid", None, f"is missing for {kind}", "the app's AgentId", code=AGENT_MISSING)
        if isinstance(agent_id, bool) or not isinstance(agent_id, int) or agent_id < 0:
            fail("agentid", agent_id, "is not an AgentId", "a whole number >= 0", code=BAD_AGENT)
    elif to.everyone:
        fail("touser", "@all", f"is not supported by {kind}", "userids, parties or tags")
    _safe(message, safe)
    for name, value in (
        ("enable_id_trans", enable_id_trans),
        ("enable_duplicate_check", enable_duplicate_check),
    ):
        flag(name, value)
    interval = duplicate_check_interval
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or not 1 <= interval <= MAX_DUPLICATE_CHECK_S
    ):
        limit = f"1 to {MAX_DUPLICATE_CHECK_S} seconds (4 h)"
        fail("duplicate_check_interval", interval, "is out of range", limit)
    body: dict[str, Any] = to.to_fields() | {"msgtype": kind}
    if message.uses_agent:
        body["agentid"] = agent_id
    body[kind] = message.payload()
    if len(message.safe_levels) > 1:
        body["safe"] = safe
    return body | {
        "enable_id_trans": int(enable_id_trans),
        "enable_duplicate_check": int(enable_duplicate_check),
        "duplicate_check_interval": interval,
    }


def build_send_bodies(
    message: Message, to: Recipients, agent_id: int | None, **options: Any
) -> tuple[dict[str, Any], ...]:
    """Like build_send_body, but a long Text becomes one body per `Text.split()` part, in order."""
    parts: Sequence[Message] = message.split() if isinstance(message, Text) else (message,)
    return tuple(build_send_body(part, to, agent_id, **options) for part in parts)


def _safe(message: Message, safe: object) -> None:
    if isinstance(safe, bool) or not isinstance(safe, int):
        fail("safe", safe, f"is {type(safe).__name__}", "0, 1 or 2")
    if safe == 0:
        return
    levels = message.safe_levels
    if len(levels) == 1:
        code = NEWS_NOT_SAFE if message.msgtype == "news" else None
        fail("safe", safe, f"is not supported by {message.msgtype}", "safe 0", code=code)
    if safe not in levels:
        allowed = ", ".join(str(level) for level in sorted(levels))
        fail("safe", safe, f"is not allowed for {message.msgtype}", f"one of {allowed}")


@dataclass(frozen=True, slots=True)
class UpdateTemplateCard:
    """message/update_template_card: grey the button (`replace_name`) or replace the card.

    Exactly one of replace_name and card; replace_name only works on button/vote/multiple cards,
    which WeCom checks against the card it sent (we don't know it here).
    """

    response_code: str
    replace_name: str | None = None
    card: TemplateCard | Mapping[str, Any] | None = None
    users: Sequence[str] = ()
    parties: Sequence[str | int] = ()
    tags: Sequence[str | int] = ()
    everyone: bool = False

    def __post_init__(self) -> None:
        identifier("update_template_card.response_code", self.response_code)
        if (self.replace_name is None) == (self.card is None):
            both = (
                "sets both replace_name and"
                if self.card is not None
                else "sets neither replace_name nor"
            )
            fail("update_template_card", None, f"{both} card", "exactly one of them")
        if self.replace_name is not None:
            text("update_template_card.button.replace_name", self.replace_name, required=True)
        if self.card is not None and not isinstance(self.card, TemplateCard):
            object.__setattr__(self, "card", TemplateCard(self.card))
        to = Recipients(self.users, self.parties, self.tags, self.everyone)
        for name in ("users", "parties", "tags", "everyone"):
            object.__setattr__(self, name, getattr(to, name))

    @property
    def recipients(self) -> Recipients:
        """Whose copies of the card to update."""
        return Recipients(self.users, self.parties, self.tags, self.everyone)

    def body(self, agent_id: int) -> dict[str, Any]:
        """The JSON body of message/update_template_card."""
        if isinstance(agent_id, bool) or not isinstance(agent_id, int) or agent_id < 0:
            fail("agentid", agent_id, "is not an AgentId", "a whole number >= 0", code=BAD_AGENT)
        body = self.recipients.to_lists() | {
            "agentid": agent_id,
            "response_code": self.response_code,
        }
        if isinstance(self.card, TemplateCard):
            return body | {"template_card": self.card.payload()}
        return body | {"button": {"replace_name": self.replace_name}}


@dataclass(frozen=True, slots=True)
class Recall:
    """message/recall of a message sent in the last 24 h, by the msgid send returned."""

    msgid: str

    def __post_init__(self) -> None:
        identifier("recall.msgid", self.msgid)

    def body(self) -> dict[str, str]:
        """The JSON body of message/recall."""
        return {"msgid": self.msgid}
