"""One HTTP exchange with the bot server: the callback sent and the reply that came back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .violations import Violation


@dataclass(frozen=True)
class Exchange:
    """A callback POST and its outcome; status None means no answer (timeout or no connection).

    kind is message, refresh, enter_chat, template_card_event or feedback_event; reply is the
    decrypted plaintext (None: no reply, or a reply that could not be opened).
    """

    kind: str
    request: Mapping[str, Any]
    query: Mapping[str, str]
    sent_at: float
    elapsed_s: float
    status: int | None
    body: bytes
    reply: Mapping[str, Any] | None
    timed_out: bool = False
    error: str | None = None
    violations: tuple[Violation, ...] = ()

    @property
    def answered(self) -> bool:
        """Whether an HTTP answer came back in time."""
        return self.status is not None and not self.timed_out

    @property
    def ok(self) -> bool:
        """No rule broken."""
        return not self.violations


@dataclass(frozen=True)
class Verification:
    """A URL-verification GET (§2.2): the echo expected and what came back."""

    echo: str
    query: Mapping[str, str]
    elapsed_s: float
    status: int | None
    body: bytes
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        """Answered in time with exactly the echo."""
        return not self.violations
