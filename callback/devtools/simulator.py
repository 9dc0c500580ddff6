"""Callback simulator: builds, encrypts and signs callbacks exactly as WeCom sends them.

Used by tests, benchmarks and `wecom simulate`; it works against any callback server.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from callback.errors import BadRequest, SignatureError
from callback.inbound import envelope, xmlcodec
from callback.inbound.crypto import MsgCrypto

_msg_ids = itertools.count(7_000_000_000_000_000_000 + secrets.randbelow(10**15))


def plaintext(fields: Mapping[str, Any], *, as_json: bool = False) -> bytes:
    """A callback plaintext from ordered fields (nested dicts/lists become child elements)."""
    if as_json:
        return json.dumps(dict(fields), ensure_ascii=False).encode()
    return (
        "<xml>" + "".join(xmlcodec.element(k, v) for k, v in fields.items()) + "</xml>"
    ).encode()


@dataclass
class Simulator:
    """One application as WeCom sees it: its corp id, agent id and callback crypto."""

    crypto: MsgCrypto
    corp_id: str
    agent_id: int = 1000002
    user: str = "zhangsan"
    clock: Callable[[], float] = field(default=time.time, repr=False)

    @classmethod
    def create(cls, token: str, encoding_aes_key: str, corp_id: str, **kw: Any) -> Simulator:
        return cls(MsgCrypto.create(token, encoding_aes_key, corp_id), corp_id, **kw)

    # -- plaintexts -----------------------------------------------------------------------------

    def fields(self, msg_type: str, user: str | None = None, **extra: Any) -> dict[str, Any]:
        """Common fields (ToUserName, FromUserName, CreateTime, MsgType) then `extra`, AgentID."""
        head = {
            "ToUserName": self.corp_id,
            "FromUserName": user or self.user,
            "CreateTime": int(self.clock()),
            "MsgType": msg_type,
        }
        return head | extra | {"AgentID": self.agent_id}

    def text(
        self, content: str, user: str | None = None, msg_id: int | None = None
    ) -> dict[str, Any]:
        return self.fields("text", user, Content=content, MsgId=msg_id or next(_msg_ids))

    def event(self, name: str, user: str | None = None, **extra: Any) -> dict[str, Any]:
        return self.fields("event", user, Event=name, **extra)

    def click(self, key: str, user: str | None = None) -> dict[str, Any]:
        return self.event("click", user, EventKey=key)

    def card_action(
        self,
        key: str,
        task_id: str = "task-1",
        selected: Mapping[str, list[str]] | None = None,
        card_type: str = "button_interaction",
        user: str | None = None,
    ) -> dict[str, Any]:
        """A template_card_event; `selected` maps question keys to chosen option ids."""
        extra: dict[str, Any] = {
            "EventKey": key,
            "TaskId": task_id,
            "CardType": card_type,
            "ResponseCode": secrets.token_hex(16),
        }
        if selected:
            extra["SelectedItems"] = {
                "SelectedItem": [
                    {"QuestionKey": q, "OptionIds": {"OptionId": list(ids)}}
                    for q, ids in selected.items()
                ]
            }
        return self.event("template_card_event", user, **extra)

    # -- requests -------------------------------------------------------------------------------

    def _signed(self, encrypted: str, timestamp: int | None, nonce: str | None) -> dict[str, str]:
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        nonce = nonce or envelope.new_nonce()
        return {
            "msg_signature": self.crypto.sign(ts, nonce, encrypted),
            "timestamp": ts,
            "nonce": nonce,
        }

    def verification(
        self, echo: str | None = None, timestamp: int | None = None
    ) -> tuple[dict[str, str], str]:
        """The URL-verification query (decoded values) and the echo the server must answer."""
        echo = echo or str(secrets.randbelow(10**19))
        encrypted = self.crypto.encrypt(echo.encode())
        return self._signed(encrypted, timestamp, None) | {"echostr": encrypted}, echo

    def post(
        self,
        fields: Mapping[str, Any] | bytes,
        *,
        as_json: bool = False,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A POST's query and body; a retry is the same plaintext posted again (re-encrypted)."""
        data = fields if isinstance(fields, bytes) else plaintext(fields, as_json=as_json)
        encrypted = self.crypto.encrypt(data)
        query = self._signed(encrypted, timestamp, nonce)
        if as_json:
            doc = {"tousername": self.corp_id, "encrypt": encrypted, "agentid": str(self.agent_id)}
            return query, json.dumps(doc).encode()
        body = (
            f"<xml><ToUserName>{xmlcodec.cdata(self.corp_id)}</ToUserName>"
            f"<Encrypt>{xmlcodec.cdata(encrypted)}</Encrypt>"
            f"<AgentID>{xmlcodec.cdata(str(self.agent_id))}</AgentID></xml>"
        )
        return query, body.encode()

    @staticmethod
    def query_string(query: Mapping[str, str]) -> str:
        """URL-encode a query exactly once, as WeCom does."""
        return urlencode(query)

    def open_reply(self, body: bytes) -> bytes:
        """Check a passive reply's signature and decrypt it; b"" for an empty answer."""
        if not body.strip():
            return b""
        if body.lstrip()[:1] == b"{":
            doc = json.loads(body)
            encrypted, sig = doc["encrypt"], doc["msgsignature"]
            ts, nonce = str(doc["timestamp"]), str(doc["nonce"])
        else:
            node = next(iter(xmlcodec.parse(body).values()))
            if not isinstance(node, dict):
                raise BadRequest("reply envelope has no fields")
            encrypted, sig = node["Encrypt"], node["MsgSignature"]
            ts, nonce = node["TimeStamp"], node["Nonce"]
        if self.crypto.sign(ts, nonce, encrypted) != sig:
            raise SignatureError("passive reply signature does not match")
        return self.crypto.decrypt(encrypted)
