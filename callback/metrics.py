"""Metrics: what the server counts, in the Prometheus text format (prometheus_client, optional).

One `Metrics` per app, on its own registry (no global state). Under several gunicorn workers set
PROMETHEUS_MULTIPROC_DIR (`wecom serve` does) so that /metrics adds up every worker. Without
prometheus_client installed every method is a no-op and /metrics says how to enable it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any


def _prometheus() -> ModuleType | None:
    """prometheus_client, imported late: it picks its multiprocess mode at import, from the
    environment, which `wecom serve` sets first."""
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:  # the optional extra is not installed
        return None


#: Time to answer WeCom, in seconds, around WeCom's 5-second limit.
ANSWER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0)


class _Depth:
    """A collector reading the outbox depth from the store at scrape time."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily("wecom_outbox_depth", "Outbox items waiting to be delivered")
        gauge.add_metric([], float(self.depth()))
        yield gauge


class Metrics:
    """The counters and histograms; call sites pass labels, never secrets."""

    def __init__(self, enabled: bool = True) -> None:
        prom: Any = _prometheus() if enabled else None
        self.enabled = prom is not None
        self.prom = prom
        self._depth: _Depth | None = None
        if not self.enabled:
            return
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        r = self.registry
        self.callbacks = prom.Counter(
            "wecom_callbacks", "Callbacks by app, type and outcome", ["app", "type", "outcome"],
            registry=r,
        )  # fmt: skip
        self.answer_seconds = prom.Histogram(
            "wecom_answer_seconds", "Time to answer WeCom (its limit is 5 s)", ["app"],
            buckets=ANSWER_BUCKETS, registry=r,
        )  # fmt: skip
        self.retries_absorbed = prom.Counter(
            "wecom_retries_absorbed", "WeCom retries answered from the inbox", ["app"], registry=r
        )
        self.handler_errors = prom.Counter(
            "wecom_handler_errors", "Handlers that raised", ["app", "handler"], registry=r
        )
        self.outbox_retries = prom.Counter(
            "wecom_outbox_retries", "Outbox attempts that failed and will be retried", registry=r
        )
        self.send_errors = prom.Counter(
            "wecom_send_errors", "WeCom API errors by errcode", ["api", "errcode"], registry=r
        )
        self.token_fetches = prom.Counter(
            "wecom_token_fetches", "gettoken calls", ["app"], registry=r
        )
        self.rate_limit_waits = prom.Counter(
            "wecom_rate_limit_waits", "Sends delayed by a member's rate window", ["app"], registry=r
        )

    def watch_outbox(self, depth: Callable[[], int]) -> None:
        """Report the outbox depth (read from the store when scraped)."""
        if self.enabled:
            self._depth = _Depth(depth)
            self.registry.register(self._depth)

    # -- events ----------------------------------------------------------------------------------

    def callback(self, app: str, kind: str, outcome: str, seconds: float) -> None:
        if self.enabled:  # once per callback: the labelled children are looked up once
            key = (app, kind or "-", outcome)
            children = self._children.get(key)
            if children is None:
                children = (self.callbacks.labels(*key), self.answer_seconds.labels(app))
                self._children[key] = children
            children[0].inc()
            children[1].observe(seconds)

    def retry_absorbed(self, app: str) -> None:
        if self.enabled:
            self.retries_absorbed.labels(app).inc()

    def handler_error(self, app: str, handler: str) -> None:
        if self.enabled:
            self.handler_errors.labels(app, handler).inc()

    def outbox_retry(self) -> None:
        if self.enabled:
            self.outbox_retries.inc()

    def send_error(self, api: str, errcode: int) -> None:
        if self.enabled:
            self.send_errors.labels(api, str(errcode)).inc()

    def token_fetch(self, app: str) -> None:
        if self.enabled:
            self.token_fetches.labels(app).inc()

    def rate_limit_wait(self, app: str) -> None:
        if self.enabled:
            self.rate_limit_waits.labels(app).inc()

    # -- exposition ------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The /metrics body and content type (every worker's counts in multiprocess mode)."""
        if not self.enabled:
            return b"# prometheus_client is not installed: pip install '.[metrics]'\n", "text/plain"
        prom = self.prom
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            if self._depth is not None:  # read from the store, not a per-process value
                merged.register(self._depth)
            body = prom.generate_latest(merged)
        else:
            body = prom.generate_latest(self.registry)
        return body, prom.CONTENT_TYPE_LATEST
