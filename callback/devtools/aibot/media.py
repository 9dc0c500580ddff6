"""MediaHost: serves files the way WeCom's media URLs do in HTTP mode (§2.5 Media).

Each URL serves the file encrypted with a key (the bot's EncodingAESKey by default): AES-256-CBC,
IV = key[:16], PKCS#7 to 32 bytes, no framing; the name is in Content-Disposition; the URL
stops working 5 minutes (ttl_s) after it was handed out, by the host's clock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from callback.devtools.served import Served

from .crypto import encrypt_media

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MEDIA_URL_TTL = 300.0
"""A media URL is valid for 5 minutes (§2.5)."""
EXPIRED_BODY = (
    b"<?xml version='1.0' encoding='utf-8' ?><Error><Code>AccessDenied</Code>"
    b"<Message>Request has expired</Message></Error>"
)
"""What an expired URL answers, with HTTP 403 (an object-storage style error; UNCONFIRMED)."""


@dataclass(frozen=True)
class HostedFile:
    """One served file: its encrypted bytes, name, type and when its URL was handed out."""

    encrypted: bytes
    filename: str
    content_type: str
    issued_at: float


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request access log line."""


class MediaHost(Served):
    """A threaded HTTP server on host:port serving encrypted media files.

    with MediaHost(aes_key(encoding_aes_key)) as host:
        url = host.add(png, filename="cat.png", content_type="image/png")
    """

    def __init__(
        self,
        key: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ttl_s: float = MEDIA_URL_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.ttl_s = ttl_s
        self.clock = clock
        self._files: dict[str, HostedFile] = {}
        self._downloads: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: BaseWSGIServer = make_server(
            host, port, self._app, threaded=True, request_handler=_QuietHandler
        )

    @property
    def url(self) -> str:
        """The host's base URL."""
        return f"http://{self._server.host}:{self._server.server_port}"

    def add(
        self,
        data: bytes,
        *,
        filename: str = "file.bin",
        content_type: str = "application/octet-stream",
        key: bytes | None = None,
    ) -> str:
        """Serve data encrypted with key (default: the host's) at a new URL; returns the URL."""
        token = secrets.token_urlsafe(12)
        hosted = HostedFile(
            encrypt_media(data, key or self.key), filename, content_type, self.clock()
        )
        with self._lock:
            self._files[token] = hosted
        sign = secrets.token_hex(20)
        return f"{self.url}/media/{token}?sign=q-sign-algorithm%3Dsha1%26q-signature%3D{sign}"

    def downloads(self, url: str | None = None) -> int:
        """Successful downloads of url (or of every URL)."""
        with self._lock:
            if url is None:
                return sum(self._downloads.values())
            return self._downloads[_token(url)]

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = _token(str(environ.get("PATH_INFO", "")))
        with self._lock:
            hosted = self._files.get(token)
            fresh = hosted is not None and self.clock() < hosted.issued_at + self.ttl_s
            if fresh:
                self._downloads[token] += 1
        if hosted is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such media"]
        if not fresh:
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [EXPIRED_BODY]
        disposition = f"attachment; filename*=UTF-8''{quote(hosted.filename)}"
        start_response(
            "200 OK",
            [
                ("Content-Type", hosted.content_type),
                ("Content-Length", str(len(hosted.encrypted))),
                ("Content-Disposition", disposition),
            ],
        )
        return [hosted.encrypted]

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def _name(self) -> str:
        return f"aibot-media-{self._server.server_port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._join()
        self._server.server_close()


def _token(url_or_path: str) -> str:
    path = url_or_path.split("?", 1)[0]
    return path.rsplit("/", 1)[-1]
