"""A reply bot: 'ask QUESTION' answered by a slow, LLM-style model that writes as it thinks.

The handler is a generator: it yields the answer a few words at a time, as a model streams its
tokens. In an AI bot's chat (智能机器人) each piece appears as it comes; in an app the pieces
are joined into one message. The route is `background=True`: WeCom gets its answer at once and
the model takes its time (seconds, well past WeCom's 5-second limit). The framework runs it
once per question, however often WeCom retries and whichever worker gets the retries, and the
member gets one answer, even if the server is killed while the model is thinking.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

from callback import Context, Router
from callback.inbound.messages import Event, TextMessage

router = Router("assistant")


def think(question: str) -> Iterator[str]:
    """Stand-in for a streaming model call (an HTTP request to an LLM, say): slow pieces."""
    answer = f"You asked: {question!r}. Here is a considered answer: it depends."
    words = answer.split(" ")
    delay = float(os.environ.get("ASSISTANT_DELAY_S", "2")) / len(words)
    for n, word in enumerate(words):
        time.sleep(delay)
        yield word if n == 0 else " " + word


@router.text(re.compile(r"^(?:ask|问)\s+(?P<question>.+)$", re.DOTALL), background=True)
def ask(message: TextMessage, ctx: Context) -> Iterator[str]:
    """Answer while thinking: streamed in a bot chat, one pushed message in an app."""
    assert isinstance(ctx.match, re.Match)
    ctx.log.info("thinking about a question from %s", message.from_user)
    yield from think(ctx.match["question"].strip())


@router.message("text", app="assistant", background=True)
def chat(message: TextMessage, ctx: Context) -> Iterator[str]:
    """In the `assistant` AI bot's chat, every text is a question (no `ask` needed)."""
    yield from think(message.content)


@router.event("enter_chat")
def welcome(message: Event, ctx: Context) -> str:
    """An AI bot's welcome, the first time a member opens its chat each day."""
    return "Hello! Ask me anything: `ask` followed by your question."
