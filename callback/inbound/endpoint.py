"""The HTTP edge: GET/POST {callback_prefix}/<app>; errors become statuses here and only here.

A WSGI middleware around the Flask app (`app.wsgi_app = CallbackEndpoint(app.wsgi_app, ...)`,
Flask's own pattern for wrapping): WeCom's callbacks, the hot path, skip Flask's request
machinery, which costs more than verifying, decrypting and parsing them; every other URL
(/healthz, /metrics, the user's own routes) is Flask's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl

from callback.errors import BadRequest, CallbackError, http_status
from callback.inbound.receiver import Answer, Receiver
from callback.inbound.refusals import UNKNOWN, Refusals, shown
from callback.metrics import Metrics

log = logging.getLogger("wecom.endpoint")

#: The WSGI environ key under which the server puts when the request reached the process
#: (time.time()), before any wait for a thread; set by `wecom serve`'s worker class.
TESTING = "wecom.testing"  # set by the wecom fixture's test client
ARRIVED_AT = "wecom.arrived_at"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class Callbacks(Protocol):
    """What answers one kind of callback URL: apps' (the Receiver) or AI bots'."""

    def verify_url(self, name: str, args: Mapping[str, str]) -> Answer: ...

    def receive(
        self, name: str, args: Mapping[str, str], body: bytes, arrived_at: float | None = None
    ) -> Answer: ...

    def known(self) -> Collection[str]: ...


class CallbackEndpoint:
    """WSGI middleware answering WeCom's callback URLs: apps' under `callback_prefix`, AI
    bots' under `bot_prefix`."""

    def __init__(
        self, app: WSGIApp, receiver: Receiver, metrics: Metrics, bots: Callbacks | None = None
    ) -> None:
        self.app = app
        self.receiver = receiver
        self.metrics = metrics
        server = receiver.settings.server
        self.routes: dict[str, Callbacks] = {server.callback_prefix + "/": receiver}
        if bots is not None:
            self.routes[server.bot_prefix + "/"] = bots
        self.limit = server.max_body_bytes
        self.warned_single_thread = False
        self.refusals = Refusals()

    def _route(self, path: str) -> tuple[Callbacks | None, str]:
        for prefix, callbacks in self.routes.items():
            if path.startswith(prefix):
                return callbacks, path[len(prefix) :]
        return None, ""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        target, name = self._route(environ.get("PATH_INFO", ""))
        if target is None or not name or "/" in name:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "POST"):
            headers = [("Allow", "GET, POST"), ("Content-Type", "text/plain; charset=utf-8")]
            start_response(_status_line(405), headers)
            return [b"use GET (URL verification) or POST (callbacks)\n"]
        started = time.perf_counter()
        try:
            args = _query(environ.get("QUERY_STRING", ""))
            if method == "POST":
                if not (environ.get("wsgi.multithread") or environ.get(TESTING)) and not (
                    self.warned_single_thread
                ):  # a test client (the wecom fixture) is no server: nothing to warn about
                    self.warned_single_thread = True
                    log.warning(
                        "this server answers one request at a time per process (a sync worker): "
                        "a burst of callbacks will queue past WeCom's 5 s; run `wecom serve`, or "
                        "gunicorn with --worker-class callback.serve.ThreadWorker --threads 32"
                    )
                arrived_at = environ.get(ARRIVED_AT)
                answer = target.receive(name, args, self._body(environ), arrived_at)
            else:
                answer = target.verify_url(name, args)
        except CallbackError as error:
            known = name if name in target.known() else UNKNOWN  # a bounded label
            elapsed = time.perf_counter() - started
            self.metrics.callback(known, "-", type(error).__name__, elapsed)
            return self._refuse(name, known, error, environ, start_response)
        outcome = "passive" if answer.body else "empty"
        self.metrics.callback(name, answer.kind, outcome, time.perf_counter() - started)
        if answer.then is not None and not environ.get("wsgi.multithread"):
            answer.then()  # a test client, say, which may never close the response: now
            answer = replace(answer, then=None)
        return _respond(answer, start_response)

    def _body(self, environ: Environ) -> bytes:
        """The body, refusing more than max_body_bytes (declared or actually sent)."""
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            if not declared.isdigit():
                raise BadRequest("Content-Length is not a number")
            if int(declared) > self.limit:
                raise BadRequest(f"body of {declared} bytes is over the {self.limit}-byte limit")
            size = int(declared)
        elif environ.get("wsgi.input_terminated") or "chunked" in environ.get(
            "HTTP_TRANSFER_ENCODING", ""
        ):
            size = self.limit + 1  # no length: read up to the limit, and one byte more
        else:
            return b""
        data: bytes = environ["wsgi.input"].read(size)
        if len(data) > self.limit:
            raise BadRequest(f"body is over the {self.limit}-byte limit")
        return data

    def _refuse(
        self,
        name: str,
        known: str,
        error: CallbackError,
        environ: Environ,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        status = http_status(error)
        detail = str(error) if known != UNKNOWN else f"no application {shown(name)!r} here"
        remote = str(environ.get("REMOTE_ADDR"))
        self.refusals.refused(known, status, type(error).__name__, detail, remote)
        body = f"{error}\n".encode()
        return _respond(Answer(body, status), start_response)


def _query(query_string: str) -> dict[str, str]:
    """The query parameters, URL-decoded exactly once; the first of repeated names wins."""
    args: dict[str, str] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        args.setdefault(key, value)
    return args


def _respond(answer: Answer, start_response: StartResponse) -> Iterable[bytes]:
    headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))]
    start_response(_status_line(answer.status), headers)
    return [answer.body] if answer.then is None else _Then(answer.body, answer.then)


class _Then(list[bytes]):
    """A response body whose close() (called by the WSGI server once it is written) starts
    the answer's follow-up work."""

    def __init__(self, body: bytes, then: Callable[[], None]) -> None:
        super().__init__([body])
        self._then: Callable[[], None] | None = then

    def close(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            then()
