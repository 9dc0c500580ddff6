"""Stand-in AI-bot servers for the AibotSide tests: a few lines of WSGI each, not our server.

A StandInBot decrypts each callback with the project's MsgCrypto (receive id ""), asks its
handler for the reply and seals it the way §2.4 says (or breaks the envelope on request).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from callback.inbound.crypto import MsgCrypto

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

TOKEN = "AibotTestToken123"
EAK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
BOT_ID = "aibTESTBOT0001"
CRYPTO = MsgCrypto.create(TOKEN, EAK, "")


@dataclass(frozen=True)
class Raw:
    """Answer with exactly this status and body."""

    body: bytes = b""
    status: int = 200


Reply = Mapping[str, Any] | Raw | None
Handler = Callable[[dict[str, Any]], Reply]


def stream(sid: str, content: str, finish: bool = False, **extra: Any) -> dict[str, Any]:
    """A stream reply body."""
    return {
        "msgtype": "stream",
        "stream": {"id": sid, "finish": finish, "content": content, **extra},
    }


def envelope(plain: Mapping[str, Any], nonce: str, timestamp: str) -> dict[str, Any]:
    """The §2.4 reply envelope around plain."""
    text = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    encrypted = CRYPTO.encrypt(text)
    return {
        "encrypt": encrypted,
        "msgsignature": CRYPTO.sign(timestamp, nonce, encrypted),
        "timestamp": int(timestamp),
        "nonce": nonce,
    }


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class StandInBot:
    """A bot server on 127.0.0.1 answering with handler(plaintext).

    mangle(envelope) may break the reply envelope; delay(plaintext) seconds to wait first.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        mangle: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        delay: Callable[[dict[str, Any]], float] | None = None,
        echo: Callable[[str], bytes] | None = None,
    ) -> None:
        self.handler = handler
        self.mangle = mangle
        self.delay = delay
        self.echo = echo or (lambda plain: plain.encode())
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/callback"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def kinds(self) -> list[str]:
        """msgtype of every callback received, in order."""
        with self.lock:
            return [plain["msgtype"] for plain in self.received]

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if environ["REQUEST_METHOD"] == "GET":
            CRYPTO.verify(
                query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
            )
            plain = CRYPTO.decrypt(query["echostr"]).decode()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [self.echo(plain)]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size))
        CRYPTO.verify(query["msg_signature"], query["timestamp"], query["nonce"], body["encrypt"])
        plain = json.loads(CRYPTO.decrypt(body["encrypt"]))
        with self.lock:
            self.received.append(plain)
        if self.delay is not None:
            time.sleep(self.delay(plain))
        reply = self.handler(plain)
        status, raw = 200, b""
        if isinstance(reply, Raw):
            status, raw = reply.status, reply.body
        elif reply is not None:
            sealed = envelope(reply, query["nonce"], query["timestamp"])
            if self.mangle is not None:
                sealed = self.mangle(sealed)
            raw = json.dumps(sealed).encode()
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [raw]

    def __enter__(self) -> StandInBot:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


class Streamer:
    """A handler that streams `parts` as growing snapshots, one per refresh, then finishes."""

    def __init__(self, parts: list[str], sid: str = "stream-1", **first: Any) -> None:
        self.parts = parts
        self.sid = sid
        self.first = first
        self.step = 0

    def __call__(self, plain: dict[str, Any]) -> Reply:
        if plain["msgtype"] == "stream":
            self.step += 1
        else:
            self.step = 0
        finish = self.step >= len(self.parts) - 1
        content = "".join(self.parts[: self.step + 1])
        extra = self.first if self.step == 0 else {}
        return stream(self.sid, content, finish, **extra)
