"""`wecom serve`: gunicorn with the app; in sandbox mode, the embedded WeCom emulator beside it.

Its worker class is gunicorn's threaded worker, so that one process holds many slow handlers'
requests at once (a burst of callbacks waiting on an LLM), and its main thread keeps the worker
alive however long a handler takes. The class also stamps each request with when it reached the
process, so that the time a request waits for a free thread counts against WeCom's 5 s.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from callback import loader
from callback.app import create_app, load_settings
from callback.config import Settings
from callback.devtools import sandbox
from callback.inbound.endpoint import ARRIVED_AT

_arrival = threading.local()
log = logging.getLogger("wecom.serve")


class ThreadWorker(GunicornThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, putting each request's arrival into the WSGI environ
    (`wecom.arrived_at`): the moment its connection became readable, before it waited for a
    thread. `gunicorn -k callback.serve.ThreadWorker --threads 32 wsgi:app` uses it directly."""

    def enqueue_req(self, conn: Any) -> None:
        conn.wecom_arrived_at = time.time()
        super().enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        _arrival.at = getattr(conn, "wecom_arrived_at", None)
        return super().handle_request(req, conn)

    def run(self) -> None:
        """gunicorn's loop; then, stopping, give the handlers still running this process's
        share of the graceful timeout, and leave without waiting for more (they run again
        elsewhere or after a restart, once their lease runs out), so that gunicorn never has to
        kill the worker."""
        super().run()
        connections = getattr(self, "wecom_connections", None)
        if connections is not None:
            connections.stop()  # give the lease back: another process takes over at once
        delivery = getattr(self, "wecom_delivery", None)
        if delivery is None:
            return
        delivery.stop()
        if delivery.workers.wait_idle(max(float(self.cfg.graceful_timeout) - 1.0, 0.0)):
            return
        log.warning(
            "stopping with handlers still running (%s): they run again once their lease "
            "(server.lease_s) runs out", ", ".join(delivery.workers.held()) or "outbox sends",
        )  # fmt: skip
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # the handler threads would hold the interpreter's exit

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: Any = getattr(self, "wsgi")  # noqa: B009 - set by gunicorn, untyped
        self.wecom_delivery = getattr(app, "extensions", {}).get("wecom.delivery")
        self.wecom_connections = getattr(app, "extensions", {}).get("wecom.connections")

        def stamped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            arrived = getattr(_arrival, "at", None)
            if arrived is not None:
                environ[ARRIVED_AT] = arrived
            result: Iterable[bytes] = app(environ, start_response)
            return result

        self.wsgi = stamped


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn running an app built by `factory` in each worker."""

    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.factory()


def banner(settings: Settings, bind: str, emulator_url: str) -> str:
    """What the sandbox prints at start: what it is, and the exact command to try."""
    app = next(iter(settings.apps))
    base = sandbox.local_url(bind) or f"http://{bind}"
    url = f"{base}{settings.server.callback_prefix}/{app}"
    modules, reason = loader.choose(settings.server.handlers, sandbox=True)
    return "\n".join(
        [
            "=" * 72,
            "  wecom-callback SANDBOX: no config file found, so nothing talks to real WeCom.",
            f"  Callback URL:   {url}",
            f"  WeCom emulator: {emulator_url}  (the send API stands in for qyapi)",
            f"  Credentials:    {os.path.abspath(sandbox.FILE_NAME)} (kept across restarts)",
            f"  Console:        {base}/_console  (chats, menu buttons, a timeline)"
            if settings.server.console is not False
            else "  Console:        off ([server] console = false)",
            f"  Handlers:       {', '.join(modules)} ({reason})",
            "  Try, in another terminal in this directory (the sandbox's keys are here):",
            *(
                ["      wecom simulate click MENU_HELP", "      wecom simulate text help"]
                if modules == [loader.DEMO]
                else ["      wecom routes", "      wecom simulate text hello"]
            ),
            "  For real WeCom: `wecom init` writes config.toml; fill it in.",
            "=" * 72,
        ]
    )


def serve(
    config: str | None,
    bind: str,
    workers: int,
    emulator_bind: str | None = None,
    threads: int | None = None,
) -> int:
    """Run the server in the foreground until interrupted."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings(config)
    emulator_server = None
    if settings.sandbox:
        emulator_server = sandbox.start_emulator(os.environ, emulator_bind)
        os.environ[sandbox.API_URL_ENV] = emulator_server.url
        sandbox.record_run(sandbox.local_url(bind), emulator_server.url, os.environ)
        settings = load_settings(config)
        print(banner(settings, bind, emulator_server.url), flush=True)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # every worker's counts in /metrics (prometheus_client's multiprocess mode)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="wecom-metrics-")
    options = {
        "bind": bind,
        "workers": workers,
        "worker_class": "callback.serve.ThreadWorker",
        "threads": threads or settings.server.threads,
        "accesslog": "-",
        "graceful_timeout": 5,
    }
    master = os.getpid()
    try:
        GunicornServer(lambda: create_app(settings), options).run()
    finally:
        # gunicorn's workers are forked inside run() and leave it by SystemExit, through this
        # block: only the master owns the emulator and the note of where the sandbox listens
        if emulator_server is not None and os.getpid() == master:
            emulator_server.stop()
            sandbox.forget_run(os.environ)
    return 0
