"""Receiver: the framework-free callback pipeline (verify, decrypt, parse, route, reply)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from callback.config import AppSettings, Settings
from callback.delivery import Delivery, TaskQueue
from callback.errors import BadRequest, StaleTimestamp, UnknownApp
from callback.inbound import envelope, messages
from callback.inbound.crypto import MsgCrypto
from callback.inbound.messages import Message
from callback.inbound.refusals import shown
from callback.outbound.client import WecomClient
from callback.router import Router
from callback.store import Store


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, body and content type."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    kind: str = ""  # the message's type or event, for metrics
    #: Work to start once the answer is written (the WSGI server closes the response): an AI
    #: bot's handler, so that it never competes with its own first reply. Should the process
    #: die first, the claim's lease runs out and recovery runs it.
    then: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """The signed query parameters of a callback request."""

    msg_signature: str
    timestamp: str
    nonce: str

    @classmethod
    def of(cls, args: Mapping[str, str], *extra: str) -> Query:
        """Read them from the URL query (already URL-decoded once); all are required."""
        missing = [k for k in ("msg_signature", "timestamp", "nonce", *extra) if not args.get(k)]
        if missing:
            raise BadRequest(f"missing query parameter(s): {', '.join(missing)}")
        return cls(args["msg_signature"], args["timestamp"], args["nonce"])


class Receiver:
    """Runs WeCom callbacks for the configured apps through the router."""

    def __init__(
        self,
        settings: Settings,
        router: Router,
        *,
        clock: Callable[[], float] = time.time,
        client: WecomClient,
        store: Store,
        queue: TaskQueue | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.resolve = router.compile()
        self.delivery = Delivery(settings, store, client, self.resolve, clock=clock, queue=queue)
        self.max_skew = settings.server.max_clock_skew_s
        self.cryptos = {
            name: MsgCrypto.create(app.token, app.encoding_aes_key, app.corp_id)
            for name, app in settings.apps.items()
            if app.receives
        }

    def known(self) -> Collection[str]:
        """The apps that receive callbacks here."""
        return self.cryptos.keys()

    def _app(self, name: str) -> tuple[AppSettings, MsgCrypto]:
        crypto = self.cryptos.get(name)
        if crypto is None:
            raise UnknownApp(f"no application {shown(name)!r} receives callbacks here")
        return self.settings.apps[name], crypto

    def _check_time(self, timestamp: str) -> None:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 20):
            raise BadRequest("timestamp is not a whole number of seconds")
        sent = int(timestamp)
        if self.max_skew and abs(self.clock() - sent) > self.max_skew:
            raise StaleTimestamp(
                f"timestamp is {int(self.clock() - sent)} s off our clock "
                f"(limit server.max_clock_skew_s = {self.max_skew})"
            )

    def verify_url(self, app: str, args: Mapping[str, str]) -> Answer:
        """GET: check the signature over echostr and answer it decrypted, bare."""
        _, crypto = self._app(app)
        query = Query.of(args, "echostr")
        echostr = args["echostr"]
        crypto.verify(query.msg_signature, query.timestamp, query.nonce, echostr)
        self._check_time(query.timestamp)
        return Answer(crypto.decrypt(echostr), kind="verify")

    def open(self, app: str, args: Mapping[str, str], body: bytes) -> tuple[Message, bool]:
        """POST, first half: verify and decrypt the body into a typed message (+ was it JSON)."""
        _, crypto = self._app(app)
        query = Query.of(args)
        env = envelope.read(body)
        crypto.verify(query.msg_signature, query.timestamp, query.nonce, env.encrypted)
        self._check_time(query.timestamp)
        return messages.parse(crypto.decrypt(env.encrypted)), env.as_json

    def receive(
        self, app: str, args: Mapping[str, str], body: bytes, arrived_at: float | None = None
    ) -> Answer:
        """POST: verify, decrypt, parse and route; delivery runs it and says what to answer.
        `arrived_at`: when the request reached this process (now, if not known)."""
        arrived_at = self.clock() if arrived_at is None else arrived_at
        message, as_json = self.open(app, args, body)
        attempt = self.delivery.attempt(arrived_at, int(args["timestamp"]))
        found = self.resolve(message, app)
        plaintext = self.delivery.answer(app, message, as_json, found, attempt)
        if plaintext is None:
            return Answer(kind=message.kind)
        return self.seal(app, plaintext, as_json=as_json, kind=message.kind)

    def seal(self, app: str, plaintext: bytes, *, as_json: bool, kind: str = "") -> Answer:
        """Encrypt and sign a passive reply plaintext, with a fresh timestamp and nonce."""
        _, crypto = self._app(app)
        now = str(int(self.clock()))
        body = envelope.seal(crypto, plaintext, now, envelope.new_nonce(), as_json=as_json)
        content_type = "application/json" if as_json else "application/xml; charset=utf-8"
        return Answer(body, 200, content_type, kind)
