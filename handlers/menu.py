"""Menu clicks: each custom-menu KEY (configured in the WeCom admin console) answered with text."""

from __future__ import annotations

from callback import Context, Router
from callback.inbound.messages import Event
from callback.outbound import MiniProgramNotice

# The send-only mini-program application of config.toml (miniprogram_notice must be sent with its
# secret) and the appid of the mini program linked to it; these match the sandbox's.
NOTICE_APP = "notices"
MINIPROGRAM_APPID = "wx_sandbox_miniprogram"

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


@router.click("MENU_BOOK_ROOM")
def book_room(message: Event, ctx: Context) -> str:
    """Book a meeting room and confirm with a mini-program notification that opens the booking."""
    room, when = "402", "4月27日 16:16"
    notice = MiniProgramNotice(
        appid=MINIPROGRAM_APPID,
        page=f"pages/booking?room={room}&user={message.from_user}",
        title="会议室预订成功",
        description=when,
        items=[("会议室", room), ("预订人", message.from_user)],
        emphasis_first_item=True,
    )
    result = ctx.send(notice, [message.from_user], app=NOTICE_APP)
    ctx.log.info("room %s booked, notice %s", room, result.msgid)
    return f"Room {room} is booked for {when}; the details are in your notifications."
