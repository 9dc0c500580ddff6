"""A stand-in bot for the long-connection tests: a few lines over websockets' sync client."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

from websockets.sync.client import ClientConnection, connect

from callback.devtools.emulator import DEFAULT_BOT_ID, DEFAULT_BOT_SECRET

BOT = DEFAULT_BOT_ID
SECRET = DEFAULT_BOT_SECRET
USER = "zhangsan"
CARD = {
    "card_type": "text_notice",
    "main_title": {"title": "done"},
    "card_action": {"type": 1, "url": "https://example.com"},
}
_ids = itertools.count(1)


class Dev:
    """The developer's side of one connection: frames out, acks and callbacks in."""

    def __init__(self, url: str) -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(url, open_timeout=5, close_timeout=1)
        )
        self.inbox: list[dict[str, Any]] = []

    def send(self, cmd: str, body: Any = None, *, req_id: str | None = None) -> str:
        req_id = req_id or f"{cmd}_{next(_ids)}"
        frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
        if body is not None:
            frame["body"] = body
        self.ws.send(json.dumps(frame, ensure_ascii=False))
        return req_id

    def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return frame

    def ack(self, req_id: str, timeout: float = 3.0) -> dict[str, Any]:
        """The next ack (callbacks that come first go to the inbox); it must be req_id's."""
        while True:
            frame = self.recv(timeout)
            if "cmd" in frame:
                self.inbox.append(frame)
                continue
            assert frame["headers"]["req_id"] == req_id, (frame, req_id)
            return frame

    def call(self, cmd: str, body: Any = None, *, req_id: str | None = None) -> dict[str, Any]:
        return self.ack(self.send(cmd, body, req_id=req_id))

    def code(self, cmd: str, body: Any = None, *, req_id: str | None = None) -> int:
        return int(self.call(cmd, body, req_id=req_id)["errcode"])

    def callback(self, timeout: float = 3.0) -> dict[str, Any]:
        if self.inbox:
            return self.inbox.pop(0)
        frame = self.recv(timeout)
        assert "cmd" in frame, frame
        return frame

    def subscribe(self, bot_id: str = BOT, secret: str = SECRET) -> dict[str, Any]:
        return self.call("aibot_subscribe", {"bot_id": bot_id, "secret": secret})

    def reply(self, req_id: str, body: Any, cmd: str = "aibot_respond_msg") -> int:
        return self.code(cmd, body, req_id=req_id)

    def close(self) -> None:
        self._stack.close()


def stream(stream_id: str, content: str, finish: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "msgtype": "stream",
        "stream": {"id": stream_id, "finish": finish, "content": content, **extra},
    }


def markdown(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": content, **extra}}


def card(**extra: Any) -> dict[str, Any]:
    return {"msgtype": "template_card", "template_card": {**CARD, **extra}}
