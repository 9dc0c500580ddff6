"""Context: what a handler gets beside the message (app, match, logger, and sending)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callback.errors import WecomError
from callback.messages import Message
from callback.router import Match

#: Sends one outbound message for an application: (app name, message) -> result.
Sender = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Context:
    """Per-callback context handed to every handler as its second argument."""

    app: str
    message: Message
    match: Match
    log: logging.LoggerAdapter[logging.Logger]
    sender: Sender | None = None

    def send(self, outbound: Any) -> Any:
        """Send an app message through the WeCom send API, as this callback's application."""
        if self.sender is None:
            raise WecomError(f"app {self.app!r} cannot send: no send client is configured")
        return self.sender(self.app, outbound)
