"""Fallback: what members get when no other handler matched their message."""

from __future__ import annotations

from callback import Context, Router
from callback.inbound.messages import Message, TextMessage

router = Router("fallback")


@router.default()
def fallback(message: Message, ctx: Context) -> str | None:
    """Answer unknown text with a hint; stay silent on events nobody handles."""
    if isinstance(message, TextMessage):
        return f"Sorry, I don't know {message.content.strip()[:40]!r}. Send 'help'."
    return None
