"""Chat: 'hello', 'help', 'echo TEXT' and 'order NUMBER' text commands."""

from __future__ import annotations

import re

from callback import Context, Router
from callback.inbound.messages import TextMessage

router = Router("chat")

HELP = (
    "Commands:\n  hello - a greeting\n  help - this list\n  echo TEXT - repeat TEXT\n"
    "  order NUMBER - look up an order\n  ask QUESTION - a slow, thoughtful answer, sent when ready"
)


@router.text("hello")
def hello(message: TextMessage, ctx: Context) -> str:
    return "Hello!"


@router.text("help")
def help_text(message: TextMessage, ctx: Context) -> str:
    return HELP


@router.text(re.compile(r"^echo\s+(?P<text>.+)$", re.DOTALL))
def echo(message: TextMessage, ctx: Context) -> str:
    assert isinstance(ctx.match, re.Match)
    return ctx.match["text"]


@router.text(re.compile(r"^order\s+(?P<number>\d{1,12})$"))
def order(message: TextMessage, ctx: Context) -> str:
    assert isinstance(ctx.match, re.Match)
    return f"Order {ctx.match['number']}: received, being prepared."
