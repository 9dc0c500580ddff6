"""Helpers for the emulator tests: a small WeCom HTTP client and message-body builders."""

from __future__ import annotations

import time
from typing import Any

import requests

from callback.devtools.emulator import (
    DEFAULT_CORP_ID,
    DEFAULT_MINIPROGRAM_SECRET,
    DEFAULT_SECRET,
    Emulator,
)

START = 1_700_000_000.0
AGENT = 1000002
MINI_AGENT = 1000003
MINI_APPID = "wx_emulator_miniprogram"


class WeComApi:
    """A thin requests helper speaking to the emulator like a WeCom client would."""

    def __init__(self, url: str, session: requests.Session) -> None:
        self.url = url
        self.session = session
        self._tokens: dict[tuple[str, str], str] = {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.session.get(f"{self.url}/cgi-bin/{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def gettoken(
        self, secret: str = DEFAULT_SECRET, corpid: str = DEFAULT_CORP_ID
    ) -> dict[str, Any]:
        return self.get("gettoken", corpid=corpid, corpsecret=secret)

    def token(self, secret: str = DEFAULT_SECRET, corpid: str = DEFAULT_CORP_ID) -> str:
        if (corpid, secret) not in self._tokens:
            answer = self.gettoken(secret, corpid)
            assert answer["errcode"] == 0, answer
            self._tokens[(corpid, secret)] = answer["access_token"]
        return self._tokens[(corpid, secret)]

    def mini_token(self) -> str:
        return self.token(DEFAULT_MINIPROGRAM_SECRET)

    def post(self, path: str, body: Any, token: str | None = None, **kw: Any) -> dict[str, Any]:
        params = {"access_token": token or self.token()}
        data = body if isinstance(body, bytes | str) else None
        json_body = None if data is not None else body
        response = self.session.post(
            f"{self.url}/cgi-bin/{path}", params=params, data=data, json=json_body, timeout=10, **kw
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def send(self, body: Any, token: str | None = None) -> dict[str, Any]:
        return self.post("message/send", body, token)

    def send_mini(self, body: Any) -> dict[str, Any]:
        return self.post("message/send", body, self.mini_token())

    def upload(
        self, kind: str = "image", data: bytes = b"\x89PNG fake image", token: str | None = None
    ) -> dict[str, Any]:
        response = self.session.post(
            f"{self.url}/cgi-bin/media/upload",
            params={"access_token": token or self.token(), "type": kind},
            files={"media": ("file.bin", data)},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def media_id(self, kind: str = "image") -> str:
        answer = self.upload(kind)
        assert answer["errcode"] == 0, answer
        return str(answer["media_id"])


def text(content: str = "hello", **extra: Any) -> dict[str, Any]:
    """A valid text message body from the default app, with top-level overrides."""
    body: dict[str, Any] = {"touser": "zhangsan", "msgtype": "text", "agentid": AGENT}
    body["text"] = {"content": content}
    body.update(extra)
    return body


def message(msgtype: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A message body of msgtype from the default app."""
    body: dict[str, Any] = {"touser": "zhangsan", "msgtype": msgtype, "agentid": AGENT}
    body[msgtype] = payload
    body.update(extra)
    return body


def wait_held(emulator: Emulator, count: int, timeout: float = 5.0) -> None:
    """Wait until the emulator holds exactly count connections (late or withheld answers)."""
    deadline = time.monotonic() + timeout
    while emulator.stats().held != count:
        assert time.monotonic() < deadline, f"{emulator.stats().held} held, not {count}"
        time.sleep(0.01)
