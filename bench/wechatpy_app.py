"""The baseline: the WeCom callback handler a typical user writes today with wechatpy and Flask.

It answers the same mix as the demo handlers (callback/demo/) with the same passive replies:
text "help" / "echo TEXT" (anything else gets the fallback hint), menu clicks MENU_HELP and
MENU_ABOUT, and template-card buttons APPROVE / REJECT (an update_button reply, which wechatpy
1.8 has no class for, so users declare one on wechatpy's BaseReply, as below).

Settings come from the environment: BENCH_TOKEN, BENCH_ENCODING_AES_KEY, BENCH_CORP_ID.
Served by bench/callback_throughput.py as `gunicorn wechatpy_app:app` (bench/ on the Python path).
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Flask, Response, abort, request
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.enterprise.replies import TextReply
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.fields import StringField
from wechatpy.messages import UnknownMessage
from wechatpy.replies import BaseReply

HELP = "Commands:\n  help - this list\n  echo TEXT - repeat TEXT\n  order NUMBER - look up an order"
ECHO = re.compile(r"^echo\s+(?P<text>.+)$", re.DOTALL)
MENU_TEXTS = {
    "MENU_HELP": "Send 'help' to see what I can do.",
    "MENU_ABOUT": "wecom-callback: verified, de-duplicated WeCom callbacks routed to handlers.",
}
CARD_BUTTONS = {"APPROVE": "Approved", "REJECT": "Rejected"}

crypto = WeChatCrypto(
    os.environ["BENCH_TOKEN"], os.environ["BENCH_ENCODING_AES_KEY"], os.environ["BENCH_CORP_ID"]
)
app = Flask("wechatpy_callback")


class ButtonField(StringField):  # type: ignore[misc]
    """`<Button><ReplaceName>…</ReplaceName></Button>`, the body of an update_button reply."""

    def to_xml(self, value: Any) -> str:
        return f"<Button><ReplaceName><![CDATA[{value}]]></ReplaceName></Button>"


class UpdateButtonReply(BaseReply):  # type: ignore[misc]
    """Passive reply to template_card_event: grey out the clicked button with new text."""

    type = "update_button"
    button = ButtonField("Button")


def handle(msg: Any) -> BaseReply | None:
    """Dispatch on message type and event key, the way wechatpy examples do."""
    if msg.type == "text":
        content = msg.content.strip()
        if content == "help":
            return TextReply(content=HELP, message=msg)
        found = ECHO.search(msg.content)
        if found:
            return TextReply(content=found["text"], message=msg)
        return TextReply(content=f"Sorry, I don't know {content[:40]!r}. Send 'help'.", message=msg)
    if msg.type == "event" and msg.event == "click" and msg.key in MENU_TEXTS:
        return TextReply(content=MENU_TEXTS[msg.key], message=msg)
    if isinstance(msg, UnknownMessage) and msg._data.get("Event") == "template_card_event":
        label = CARD_BUTTONS.get(msg._data.get("EventKey", ""))
        if label:
            return UpdateButtonReply(button=label, message=msg)
    return None


@app.post("/wecom/callback/<name>")
def callback(name: str) -> Response:
    """Verify and decrypt with WeChatCrypto, parse, dispatch, encrypt the passive reply."""
    signature = request.args.get("msg_signature", "")
    timestamp = request.args.get("timestamp", "")
    nonce = request.args.get("nonce", "")
    try:
        xml = crypto.decrypt_message(request.data, signature, timestamp, nonce)
    except (InvalidSignatureException, InvalidCorpIdException):
        abort(403)
    reply = handle(parse_message(xml))
    if reply is None:
        return Response("", content_type="text/plain")
    body = crypto.encrypt_message(reply.render(), nonce, timestamp)
    return Response(body, content_type="application/xml")


@app.get("/healthz")
def healthz() -> str:
    """Readiness probe for the benchmark driver."""
    return "ok\n"
