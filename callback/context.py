"""Context: what a handler gets beside the message (app, match, logger, and sending)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from callback.errors import ConfigError
from callback.inbound.messages import Message
from callback.router import Match

if TYPE_CHECKING:
    from callback.outbound import Message as Outbound
    from callback.outbound import Recipients
    from callback.outbound.client import SendResult
    from callback.outbound.webhooks import WebhookMessage


class Sender(Protocol):
    """What sends for a handler: the client itself, or the outbox (durable, de-duplicated)."""

    def send(self, app: str, message: Outbound, to: Any, **options: Any) -> SendResult: ...


class CallbackLog(logging.LoggerAdapter[logging.Logger]):
    """A handler's logger: every line starts with the app and the callback's key."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra.get('app')} {extra.get('key')}] {msg}", kwargs


@dataclass(frozen=True)
class Context:
    """Per-callback context handed to every handler as its second argument."""

    app: str
    message: Message
    match: Match
    log: logging.LoggerAdapter[logging.Logger]
    sender: Sender | None = None
    downloader: Callable[[str, str], bytes] | None = None

    def download(self, media: Any, aeskey: str = "") -> bytes:
        """The decrypted bytes of a picture, file or video a member sent an AI bot: `media` is
        the message (or a mixed item, or a quote) or its `url`, valid for 5 minutes; over the
        long connection the URL's own key comes with the message (or as `aeskey`)."""
        if self.downloader is None:
            raise ConfigError(f"{self.app!r} has no media to download: only AI bots do")
        if isinstance(media, str):
            return self.downloader(media, aeskey)
        return self.downloader(str(media.url), aeskey or str(getattr(media, "aeskey", "")))

    def send(
        self,
        outbound: Outbound | WebhookMessage,
        to: Recipients | str | Sequence[str] | None = None,
        *,
        app: str | None = None,
        webhook: str | None = None,
        **options: Any,
    ) -> SendResult:
        """Send an app message as this callback's application (or `app`, e.g. the
        mini-program application for a miniprogram_notice), or post a `Webhook...` message to
        the group robot `webhook` (no `to`: the robot's group).

        It goes through the durable outbox, keyed by this callback: if the handler runs again
        (recovery after a crash), the member still gets it once. The result carries the msgid,
        or `queued=True` when it waits for a rate window or a retry."""
        if self.sender is None:
            raise ConfigError(f"app {self.app!r} cannot send: no send client is configured")
        if webhook is not None:
            return self.sender.send(self.app, outbound, None, webhook=webhook)  # type: ignore[arg-type]
        return self.sender.send(app or self.app, outbound, to, **options)  # type: ignore[arg-type]

    def reply(self, outbound: Outbound | str, **options: Any) -> SendResult:
        """Send a message to the member who sent this callback (a str is a text message)."""
        from callback.outbound import Text

        message = Text(outbound) if isinstance(outbound, str) else outbound
        return self.send(message, [self.message.from_user], **options)
