"""create_app(): the one place that wires settings, handlers, receiver and the Flask edge."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from flask import Flask, Response

from callback import config, endpoint, loader
from callback.client import WecomClient
from callback.config import Settings
from callback.receiver import Receiver
from callback.router import Router
from callback.store import open_store


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from --config / $WECOM_CONFIG / ./config.toml, or sandbox settings without one."""
    env = os.environ if env is None else env
    found = config.find_config(path, env)
    if found is None:
        from callback import sandbox  # only when there is no config at all

        return sandbox.settings(env)
    return config.load(found, env)


def create_app(
    settings: Settings | None = None,
    *,
    router: Router | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """Build the WSGI app. Without arguments: settings from the environment, handlers by config."""
    settings = settings or load_settings()
    if router is None:
        router = loader.load(settings.server.handlers)
    store = open_store(settings.server.state)
    client = WecomClient(settings.apps, store)
    receiver = Receiver(settings, router, clock=clock, client=client, store=store)
    receiver.delivery.start()

    app = Flask("wecom_callback", static_folder=None)
    app.extensions["wecom"] = receiver
    app.extensions["wecom.client"] = client
    app.extensions["wecom.delivery"] = receiver.delivery
    app.register_blueprint(endpoint.blueprint(receiver))

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", content_type="text/plain")

    return app
