"""Menu clicks: each custom-menu KEY (configured in the WeCom admin console) answered with text."""

from __future__ import annotations

from callback import Context, Router
from callback.messages import Event

router = Router("menu")

MENU_TEXTS = {
    "MENU_HELP": "Send 'help' to see what I can do.",
    "MENU_ABOUT": "wecom-callback: verified, de-duplicated WeCom callbacks routed to handlers.",
}


@router.click("MENU_HELP")
@router.click("MENU_ABOUT")
def menu_text(message: Event, ctx: Context) -> str:
    """Answer a fixed menu item with its text."""
    return MENU_TEXTS[message.event_key]


@router.event("enter_agent")
def welcome(message: Event, ctx: Context) -> str:
    """Greet a member who opens the application."""
    return f"Welcome, {message.from_user}! Send 'help' to begin."
