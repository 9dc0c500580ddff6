"""Celery (`[server] queue = "celery"`): background handlers and outbox deliveries as tasks.

Web nodes verify, claim, hand the claim to the queue and answer; workers run the handlers.
Tasks are acknowledged late and rejected when their worker is lost, so a killed worker's task
is delivered again; the inbox makes a second delivery harmless (the record is done, or still
held by a live owner, in which case the task waits and retries). Workers also run the
maintenance loop: a callback whose worker died is recovered once its lease runs out.

    WECOM_CONFIG=/etc/wecom/config.toml celery -A callback.worker worker --concurrency 4
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

from callback import loader
from callback.config import Settings
from callback.delivery import Delivery
from callback.errors import Unavailable
from callback.metrics import Metrics
from callback.outbound.client import WecomClient
from callback.store import open_store

RUN_CALLBACK = "wecom.run_callback"
DELIVER = "wecom.deliver"


def make_celery(settings: Settings) -> Celery:
    """The Celery app for `settings`: its configuration and the two tasks."""
    server = settings.server
    app = Celery("wecom_callback", broker=server.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="wecom",
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": max(60, 4 * server.lease_s)},
        worker_hijack_root_logger=False,
    )
    runtimes: dict[int, Delivery] = {}

    def delivery() -> Delivery:
        """This worker process's Delivery (built on first use, again after a fork)."""
        found = runtimes.get(os.getpid())
        if found is None:
            store = open_store(server.state)
            client = WecomClient(settings.apps, store, metrics=Metrics(enabled=False))
            router = loader.load(server.handlers)
            found = runtimes[os.getpid()] = Delivery(settings, store, client, router.compile())
        return found

    @app.task(name=RUN_CALLBACK, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run_callback(task: Any, key: str, token: str) -> None:
        wait = delivery().run_queued(key, token)
        if wait is not None:
            raise task.retry(countdown=wait)

    @app.task(name=DELIVER)  # type: ignore[untyped-decorator]
    def deliver(item_id: str) -> None:
        delivery().outbox.deliver(item_id)

    def start_maintenance(**_: Any) -> None:
        """Each worker process recovers callbacks whose worker died, from its start on."""
        delivery().start()

    # weak=False: the receivers are closures of this app, kept alive by the signals
    signals.worker_process_init.connect(start_maintenance, weak=False)  # prefork children
    signals.worker_init.connect(start_maintenance, weak=False)  # solo and threads pools
    app.wecom_delivery = delivery
    return app


class CeleryQueue:
    """The web nodes' side: enqueue the tasks by name (no handler code needed to send)."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def run_callback(self, key: str, token: str) -> None:
        self._send(RUN_CALLBACK, key, token)

    def deliver(self, item_id: str) -> None:
        self._send(DELIVER, item_id)

    def _send(self, task: str, *args: str) -> None:
        """Enqueue; a broker failure is Unavailable (503: WeCom retries, and the claim, already
        stored, is recovered by a worker once its lease runs out)."""
        try:
            self.app.send_task(task, args=list(args))
        except Exception as exc:  # kombu and redis raise many kinds
            raise Unavailable(f"task queue unreachable ({type(exc).__name__})") from exc

    def health(self) -> str:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # any broker failure is an unhealthy queue
            return f"broker unreachable: {exc}"
        return "ok"
