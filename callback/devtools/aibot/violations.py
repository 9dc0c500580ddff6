"""Protocol rules the WeCom side checks, each with its section of the AI-bot protocol notes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conversation import Conversation
    from .exchange import Exchange

RULES: Mapping[str, tuple[str, str]] = {
    "http.status": ("§2.4", "a passive reply is HTTP 200"),
    "http.timeout": ("§2.10", "a callback is answered within 5 s"),
    "http.connect": ("§2.3", "the callback URL accepts the POST"),
    "envelope.json": ("§2.4", "a reply is empty, 'success' or JSON with an 'encrypt' string"),
    "envelope.msgsignature": (
        "§2.4",
        "msgsignature is sha1 of sorted token, timestamp, nonce, encrypt",
    ),
    "envelope.timestamp": ("§2.4", "timestamp is a number or a string of digits"),
    "envelope.nonce": ("§2.4", "nonce is the nonce of the callback's URL"),
    "envelope.decrypt": ("§2.1", "encrypt decrypts with the bot's key to random‖len‖msg‖receiveid"),
    "envelope.receiveid": ("§2.1", "the receive id of an AI bot's reply is empty"),
    "reply.json": ("§2.8", "the decrypted reply is a UTF-8 JSON object"),
    "reply.type": ("§2.8", "the reply type is allowed for this callback"),
    "stream.id": ("§2.8.2", "a stream reply carries a non-empty string stream.id"),
    "stream.same_id": ("§2.7", "replies to refreshes keep the first reply's stream.id"),
    "stream.finish": ("§2.8.2", "stream.finish is a bool"),
    "stream.content": ("§2.8.2", "stream.content is a string"),
    "stream.content.size": ("§2.8.2", "stream.content is at most 20480 UTF-8 bytes"),
    "stream.msg_item.finish": ("§2.8.2", "msg_item only in the finish=true reply"),
    "stream.msg_item.count": ("§2.8.2", "at most 10 msg_item entries"),
    "stream.msg_item.image": ("§2.8.2", "msg_item entries are images: base64 ≤ 10 MB, md5 hex"),
    "stream.window": ("§2.7", "the stream finishes within 6 min of the user's message"),
    "feedback.size": ("§2.8.2", "feedback.id is a string of at most 256 UTF-8 bytes"),
    "feedback.first_only": ("§2.8.2", "feedback.id is only honoured on the first reply"),
    "card.once": ("§2.8.4", "a message gets at most one template_card"),
    "card.type": ("§4", "template_card is an object with a known card_type"),
    "card.task_id": ("§2.8.5", "the updated card's task_id is the event's task_id"),
    "update.msgtype": ("§2.8.5", "update_template_card sets response_type, not msgtype"),
    "update.userids": ("§2.8.5", "userids, when given, is a list of userid strings"),
    "text.content": ("§2.8.1", "a welcome text carries text.content"),
    "dedup.same_stream": ("§2.10", "a repeated message callback continues the same stream"),
    "dedup.lost": ("§2.10", "a repeated message callback gets the existing stream's snapshot"),
    "verify.timeout": ("§2.2", "URL verification is answered within 1 s"),
    "verify.echo": ("§2.2", "URL verification answers HTTP 200 with exactly the echo plaintext"),
}
"""rule -> (section, what it requires)."""


@dataclass(frozen=True)
class Violation:
    """A rule the bot server broke; exchange is the index of the HTTP exchange that broke it."""

    rule: str
    detail: str
    exchange: int | None = None

    @property
    def section(self) -> str:
        """The section of the protocol notes the rule comes from."""
        return RULES[self.rule][0]

    def __str__(self) -> str:
        return f"{self.rule} ({self.section}: {RULES[self.rule][1]}): {self.detail}"


class ProtocolViolation(AssertionError):
    """Strict mode: the bot server broke a rule; the conversation so far (or the event's
    exchange) is attached."""

    def __init__(
        self,
        violation: Violation,
        conversation: Conversation | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        super().__init__(str(violation))
        self.violation = violation
        self.conversation = conversation
        self.exchange = exchange
