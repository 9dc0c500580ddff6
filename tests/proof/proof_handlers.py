"""Handlers for the delivery proofs: each run writes lines to $PROOF_LOG, shared by processes."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

from callback import Context, Router
from callback.inbound.messages import ChangeContactEvent, TextMessage
from callback.outbound import Text

router = Router("proof")


def note(line: str) -> None:
    with open(os.environ["PROOF_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{line} pid={os.getpid()}\n")


@router.text("slow")
def slow(message: TextMessage, ctx: Context) -> str:
    """Over the budget: WeCom gets an empty 200, the reply is pushed."""
    note("slow start")
    time.sleep(6)
    note("slow end")
    return "slow reply"


@router.text("busy")
def busy(message: TextMessage, ctx: Context) -> str:
    note("busy start")
    time.sleep(1)
    return "busy reply"


@router.text("long job", background=True)
def long_job(message: TextMessage, ctx: Context) -> str:
    note("long job start")
    time.sleep(4)
    note("long job end")
    return "long job reply"


@router.text(re.compile(r"^quick job"), background=True)
def quick_job(message: TextMessage, ctx: Context) -> str:
    note("quick job")
    return f"{message.content} reply"


@router.event("change_contact")
def contact(message: ChangeContactEvent, ctx: Context) -> None:
    note(f"contact {message.user_id}")


@router.text(re.compile(r"^member "))
def member(message: TextMessage, ctx: Context) -> str:
    """A slow handler (an LLM call, say): 1.5 s."""
    note(f"member start {message.content}")
    time.sleep(1.5)
    note(f"member end {message.content}")
    return f"answer to {message.content}"


@router.text(re.compile(r"^twice "), background=True)
def twice(message: TextMessage, ctx: Context) -> None:
    """The same text twice, meant: the second goes without WeCom's duplicate check."""
    for n in (1, 2):
        note(f"twice send {n}")
        ctx.send(Text(message.content), [message.from_user])


@router.text(re.compile(r"^story"), app="assistant")
def story(message: TextMessage, ctx: Context) -> Iterator[str]:
    """An AI bot's streamed answer: 12 words, one every 0.25 s (3 s in all)."""
    note(f"story start {message.msg_id}")
    for n in range(12):
        time.sleep(float(os.environ.get("STORY_WORD_S", "0.25")))
        yield f"word{n} "
    note(f"story end {message.msg_id}")
