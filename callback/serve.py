"""`wecom serve`: gunicorn with the app; in sandbox mode, the embedded WeCom emulator beside it."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from callback.app import create_app, load_settings
from callback.config import Settings
from callback.devtools import sandbox


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
    url = f"http://{bind}{settings.server.callback_prefix}/{app}"
    return "\n".join(
        [
            "=" * 72,
            "  wecom-callback SANDBOX: no config file found, so nothing talks to real WeCom.",
            f"  Callback URL:   {url}",
            f"  WeCom emulator: {emulator_url}  (the send API stands in for qyapi)",
            f"  Credentials:    {os.path.abspath(sandbox.FILE_NAME)} (kept across restarts)",
            "  Try, in another terminal:",
            f"      wecom simulate click MENU_HELP --url {url}",
            f"      wecom simulate text help --url {url}",
            "  For real WeCom: copy config.example.toml to config.toml and fill it in.",
            "=" * 72,
        ]
    )


def serve(config: str | None, bind: str, workers: int, emulator_bind: str | None = None) -> int:
    """Run the server in the foreground until interrupted."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings(config)
    emulator_server = None
    if settings.sandbox:
        emulator_server = sandbox.start_emulator(os.environ, emulator_bind)
        os.environ[sandbox.API_URL_ENV] = emulator_server.url
        sandbox.record_emulator(emulator_server.url, os.environ)
        settings = load_settings(config)
        print(banner(settings, bind, emulator_server.url), flush=True)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # every worker's counts in /metrics (prometheus_client's multiprocess mode)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="wecom-metrics-")
    options = {
        "bind": bind,
        "workers": workers,
        "worker_class": "sync",
        "accesslog": "-",
        "graceful_timeout": 5,
    }
    try:
        GunicornServer(lambda: create_app(settings), options).run()
    finally:
        if emulator_server is not None:
            emulator_server.stop()
    return 0
