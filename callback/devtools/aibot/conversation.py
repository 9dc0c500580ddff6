"""What a member saw of one message: the snapshots of its stream, its card, and the rules broken.

MemberView follows the replies as WeCom shows them (§2.8: snapshot semantics, one card per
message, feedback from the first reply); Conversation is the frozen record converse() returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .envelope import Issue
from .exchange import Exchange
from .replies import check_card, check_type, parse_stream, reply_type
from .violations import Violation


class Ending(StrEnum):
    """How a conversation ended for the member."""

    FINISHED = "finished"
    """A stream reply said finish: true."""
    WINDOW_CLOSED = "window_closed"
    """The 6-minute window (window_s) closed before finish; polling stopped (§2.7)."""
    CARD = "card"
    """The message was answered with a template_card alone."""
    NO_REPLY = "no_reply"
    """The message was answered with no reply (empty, 'success' or an encrypted {})."""
    NO_ANSWER = "no_answer"
    """No usable answer to any attempt (timeout, no connection, bad HTTP status or envelope)."""
    BROKEN = "broken"
    """The reply could not be shown (wrong type, a stream without id); see the violations."""
    ABORTED = "aborted"
    """Strict mode stopped at the first violation (the ProtocolViolation carries this record)."""


class MemberView:
    """The member's screen for one message, updated reply by reply."""

    def __init__(self) -> None:
        self.stream_id: str | None = None
        self.content: str | None = None
        self.snapshots: list[str] = []
        self.finished = False
        self.feedback_id: str | None = None
        self.card: Mapping[str, Any] | None = None
        self.images: tuple[bytes, ...] = ()

    @property
    def streaming(self) -> bool:
        """A stream is open: WeCom keeps polling."""
        return self.stream_id is not None and not self.finished

    def first_reply(self, reply: Mapping[str, Any] | None) -> list[Issue]:
        """Show the reply to the message itself."""
        issues = check_type("message", reply)
        if reply is None or issues:
            return issues
        kind = reply_type(reply)
        if kind == "template_card":
            return self._card(reply.get("template_card"))
        stream, problems = parse_stream(reply.get("stream"))
        issues += problems
        if stream is None or stream.id is None:
            return issues
        self.stream_id = stream.id
        self.feedback_id = stream.feedback_id
        self._show(stream.content, stream.finish, stream.images)
        if kind == "stream_with_template_card":
            issues += self._card(reply.get("template_card"))
        return issues

    def refresh_reply(self, reply: Mapping[str, Any] | None) -> list[Issue]:
        """Show the reply to a refresh; the snapshot is kept when the reply is not usable."""
        issues = check_type("refresh", reply)
        if reply is None or issues:
            self.snapshots.append(self.content or "")
            return issues
        stream, problems = parse_stream(reply.get("stream"))
        issues += [issue for issue in problems if issue[0] != "stream.id"]
        if stream is None or stream.id != self.stream_id:
            found = None if stream is None else stream.id
            issues.append(
                ("stream.same_id", f"stream.id {found!r}, the stream is {self.stream_id!r}")
            )
            self.snapshots.append(self.content or "")
            return issues
        if stream.feedback_id is not None and stream.feedback_id != self.feedback_id:
            issues.append(
                ("feedback.first_only", f"feedback.id {stream.feedback_id!r} on a later reply")
            )
        self._show(stream.content, stream.finish, stream.images)
        if reply_type(reply) == "stream_with_template_card":
            issues += self._card(reply.get("template_card"))
        return issues

    def _show(self, content: str, finish: bool, images: tuple[bytes, ...]) -> None:
        self.content = content  # snapshot semantics: the reply replaces the bubble
        self.snapshots.append(self.content)
        if finish:
            self.finished = True
            self.images = images

    def _card(self, card: Any) -> list[Issue]:
        if self.card is not None:
            return [("card.once", "a second template_card for the same message")]
        feedback, issues = check_card(card)
        if isinstance(card, dict) and not issues:
            self.card = card
            self.feedback_id = self.feedback_id or feedback
        return issues


@dataclass(frozen=True)
class Conversation:
    """One message as the member saw it, and every exchange and violation on the way."""

    message: Mapping[str, Any]
    ending: Ending
    stream_id: str | None
    snapshots: tuple[str, ...]
    finished: bool
    feedback_id: str | None
    card: Mapping[str, Any] | None
    images: tuple[bytes, ...]
    exchanges: tuple[Exchange, ...]
    violations: tuple[Violation, ...]
    duration_s: float

    @property
    def msgid(self) -> str:
        """The message's msgid."""
        return str(self.message["msgid"])

    @property
    def final_content(self) -> str | None:
        """The stream's last snapshot (None: no stream was shown)."""
        return self.snapshots[-1] if self.snapshots else None

    @property
    def attempts(self) -> tuple[Exchange, ...]:
        """The deliveries of the message callback (more than one with a retry)."""
        return tuple(e for e in self.exchanges if e.kind == "message")

    @property
    def refreshes(self) -> tuple[Exchange, ...]:
        """The stream refresh callbacks sent."""
        return tuple(e for e in self.exchanges if e.kind == "refresh")

    @property
    def response_url(self) -> str | None:
        """The response_url the message carried."""
        url = self.message.get("response_url")
        return url if isinstance(url, str) else None

    @property
    def response_code(self) -> str | None:
        """The response_code of the response_url."""
        url = self.response_url
        codes = parse_qs(urlsplit(url).query).get("response_code") if url else None
        return codes[0] if codes else None

    @property
    def rules_broken(self) -> tuple[str, ...]:
        """The rules of the violations, in order."""
        return tuple(v.rule for v in self.violations)

    @property
    def ok(self) -> bool:
        """No rule broken."""
        return not self.violations
