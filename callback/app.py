"""create_app(): the one place that wires settings, handlers, receiver and the Flask edge."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping

from flask import Flask, Response

from callback import config, loader
from callback.bots import media
from callback.bots.connection import Connections
from callback.bots.receiver import BotReceiver
from callback.config import Settings
from callback.delivery import Delivery
from callback.errors import WecomError
from callback.inbound import endpoint
from callback.inbound.receiver import Receiver
from callback.metrics import Metrics
from callback.outbound.client import WecomClient
from callback.outbound.webhooks import WebhookClient
from callback.router import Router
from callback.store import Store, open_store

log = logging.getLogger("wecom.app")


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from --config / $WECOM_CONFIG / ./config.toml, or sandbox settings without one."""
    env = os.environ if env is None else env
    found = config.find_config(path, env)
    if found is None:
        from callback.devtools import sandbox  # only when there is no config at all

        return sandbox.settings(env)
    return config.load(found, env)


def create_app(
    settings: Settings | None = None,
    *,
    router: Router | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """Build the WSGI app. Without arguments: settings from the environment, handlers by config
    (see `loader.choose`); which handler modules it loaded is logged, and kept in
    `app.extensions["wecom.handlers"]` (a `loader.Loaded`, None when `router` is given)."""
    if settings is None:
        settings = load_settings()
        if settings.sandbox:  # `gunicorn wsgi:app` with no config: never silently
            log.warning("%s", sandbox_notice(settings))
    loaded = None
    if router is None:
        loaded = loader.load_for(settings.server.handlers, sandbox=settings.sandbox)
        router = loaded.router
        log.info("%s", loaded.summary())
    store = open_store(settings.server.state)
    metrics = Metrics()
    client = WecomClient(settings.apps, store, metrics=metrics)
    queue = None
    if settings.server.queue == "celery":
        from callback.delivery.tasks import CeleryQueue, make_celery  # the optional extra

        queue = CeleryQueue(make_celery(settings))
    receiver = Receiver(settings, router, clock=clock, client=client, store=store, queue=queue)
    downloaders = {
        name: media.downloader(name, bot.encoding_aes_key) for name, bot in settings.bots.items()
    }
    bots = BotReceiver(settings, receiver.delivery, receiver.resolve, downloaders, clock=clock)
    connections = Connections(settings, receiver.delivery, receiver.resolve, downloaders)
    webhooks = WebhookClient(settings.webhooks, store)
    receiver.delivery.outbox.webhooks = webhooks
    metrics.watch_outbox(store.outbox_depth)
    receiver.delivery.start()
    connections.start()  # the bots in connection mode: one process of all holds each

    app = Flask("wecom_callback", static_folder=None)
    app.extensions["wecom"] = receiver
    app.extensions["wecom.client"] = client
    app.extensions["wecom.delivery"] = receiver.delivery
    app.extensions["wecom.metrics"] = metrics
    app.extensions["wecom.bots"] = bots
    app.extensions["wecom.webhooks"] = webhooks
    app.extensions["wecom.connections"] = connections
    app.extensions["wecom.handlers"] = loaded
    app.wsgi_app = endpoint.CallbackEndpoint(app.wsgi_app, receiver, metrics, bots)  # type: ignore[method-assign]

    @app.get("/healthz")
    def healthz() -> Response:
        checks = health(store, receiver.delivery)
        status = 200 if all(v == "ok" for v in checks.values()) else 503
        return Response(json.dumps(checks), status=status, content_type="application/json")

    @app.get("/metrics")
    def metrics_page() -> Response:
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    from callback.devtools import console  # the sandbox console: /_console

    if console.enabled(settings):
        from callback.devtools.console.blueprint import install

        install(app, settings, store, receiver, router.routes())
    return app


def sandbox_notice(settings: Settings) -> str:
    """What a server that found no config says (`wecom serve` prints its banner instead)."""
    api = next(iter(settings.apps.values())).api_base_url
    here = os.path.abspath(os.environ.get("WECOM_SANDBOX_DIR", "."))
    return (
        "SANDBOX mode: no config file (--config, $WECOM_CONFIG or ./config.toml), so nothing "
        f"talks to real WeCom: generated credentials in {here}, sends go to a WeCom emulator at "
        f"{api} (`wecom serve` starts one beside the server). For real WeCom, `wecom init` "
        "writes config.toml to fill in."
    )


def health(store: Store, delivery: Delivery) -> dict[str, str]:
    """What /healthz reports: the state store answers a write and a read; the workers run."""
    checks = {}
    try:
        key = f"health:{uuid.uuid4().hex}"
        store.put(key, "ok", 5)
        checks["store"] = "ok" if store.get(key) == "ok" else "read back a different value"
        store.delete_if(key, "ok")
    except WecomError as exc:
        checks["store"] = str(exc)
    checks["queue"] = delivery.health()
    return checks
