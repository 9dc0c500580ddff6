"""The emulator's Flask app factory and a threaded HTTP server that runs it in the background."""

from __future__ import annotations

import os
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from callback.devtools.served import Served

from .admin import control_blueprint
from .aibot_api import aibot_blueprint
from .aibot_ws.control_api import aibot_ws_control_blueprint
from .holds import HoldingMiddleware
from .state import Emulator
from .webhook_api import webhook_blueprint, webhook_control_blueprint
from .wecom_api import cgi_blueprint

MAX_REQUEST_BYTES = 32 << 20


def create_emulator_app(
    emulator: Emulator | None = None, *, stopping: threading.Event | None = None
) -> Flask:
    """A Flask app serving WeCom's /cgi-bin/ API (with the AI bot's response_url) and the
    /_emulator/ control API.

    Setting `stopping` ends every connection the app holds (late or withheld answers).
    """
    emulator = emulator or Emulator()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["wecom_emulator"] = emulator
    app.register_blueprint(aibot_blueprint(emulator))
    app.register_blueprint(webhook_blueprint(emulator))
    app.register_blueprint(cgi_blueprint(emulator))
    app.register_blueprint(control_blueprint(emulator))
    app.register_blueprint(webhook_control_blueprint(emulator))
    app.register_blueprint(aibot_ws_control_blueprint(emulator.aibot_ws))
    app.wsgi_app = HoldingMiddleware(app.wsgi_app, emulator.hold, stopping)  # type: ignore[method-assign]
    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request access log line."""


class EmulatorServer(Served):
    """Serve an Emulator on host:port (0 = any free port) from a background thread.

    with EmulatorServer(Emulator()) as server:
        requests.get(f"{server.url}/cgi-bin/gettoken", params=...)
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        quiet: bool = True,
    ) -> None:
        self.emulator = emulator or Emulator()
        handler = _QuietHandler if quiet else None
        self._stopping = threading.Event()
        app = create_emulator_app(self.emulator, stopping=self._stopping)
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=handler
        )
        self._pid = os.getpid()

    @property
    def host(self) -> str:
        """The bound host."""
        return str(self._server.host)

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL to use instead of https://qyapi.weixin.qq.com."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def _name(self) -> str:
        return f"wecom-emulator-{self.port}"

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted or stop() is called from elsewhere."""
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving, end the connections held (late or withheld answers), close the socket.
        In a process forked from the one serving (a gunicorn worker), which has no serving
        thread: only close this process's copy of the socket."""
        if os.getpid() != self._pid:
            self._server.server_close()
            return
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._join()
        self.emulator.wait_unheld(self._stopping)
        self._server.server_close()
