"""A reply bot: 'ask QUESTION' answered by a slow, LLM-style model, in the background.

The route is `background=True`: WeCom gets its 200 at once, the model takes its time (seconds,
well past WeCom's 5-second limit), and the answer goes to the member through the send API. The
framework guarantees it runs once per question, however often WeCom retries, and that the member
gets one answer, even if the server is killed while the model is thinking.
"""

from __future__ import annotations

import os
import re
import time

from callback import Context, Router
from callback.inbound.messages import TextMessage

router = Router("assistant")


def think(question: str) -> str:
    """Stand-in for a model call (an HTTP request to an LLM, say): slow, then an answer."""
    time.sleep(float(os.environ.get("ASSISTANT_DELAY_S", "2")))
    return f"You asked: {question!r}. Here is a considered answer: it depends."


@router.text(re.compile(r"^(?:ask|问)\s+(?P<question>.+)$", re.DOTALL), background=True)
def ask(message: TextMessage, ctx: Context) -> str:
    """Answer after thinking; the reply is pushed (a background route never replies passively)."""
    assert isinstance(ctx.match, re.Match)
    ctx.log.info("thinking about a question from %s", message.from_user)
    return think(ctx.match["question"].strip())
