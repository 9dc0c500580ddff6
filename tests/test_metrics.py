"""GET /metrics (Prometheus text format) and GET /healthz."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from callback import Router
from callback.app import create_app
from callback.devtools.simulator import Simulator
from tests.conftest import make_settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_callbacks_outcomes_and_errors(sim: Simulator) -> None:
    router = Router()
    router.add("text", "hi", lambda m, ctx: "hello")
    router.add("text", "boom", lambda m, ctx: 1 / 0)
    app = create_app(make_settings(), router=router)
    c = app.test_client()
    for fields in (sim.text("hi"), sim.text("boom"), sim.click("NOPE")):
        query, body = sim.post(fields)
        assert c.post("/wecom/callback/hr", query_string=query, data=body).status_code == 200
    fields = sim.text("again")
    for _ in range(2):  # a WeCom retry: absorbed by the inbox
        query, body = sim.post(fields)
        c.post("/wecom/callback/hr", query_string=query, data=body)
    query, body = sim.post(sim.text("x"))
    query["msg_signature"] = "0" * 40
    assert c.post("/wecom/callback/hr", query_string=query, data=body).status_code == 403

    response = c.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    got = samples(response.get_data(as_text=True))

    def callbacks(outcome: str, kind: str) -> float:
        return got[("wecom_callbacks_total", (("app", "hr"), ("outcome", outcome), ("type", kind)))]

    assert callbacks("passive", "text") == 1  # hi
    assert callbacks("empty", "text") == 3  # boom (raised), again, and again's retry
    assert callbacks("empty", "click") == 1  # no route
    refused = (("app", "hr"), ("outcome", "SignatureError"), ("type", "-"))
    assert got[("wecom_callbacks_total", refused)] == 1
    assert got[("wecom_retries_absorbed_total", (("app", "hr"),))] == 1
    errors = [k for k in got if k[0] == "wecom_handler_errors_total"]
    assert len(errors) == 1 and got[errors[0]] == 1
    assert got[("wecom_answer_seconds_count", (("app", "hr"),))] == 6
    assert got[("wecom_answer_seconds_bucket", (("app", "hr"), ("le", "5.0")))] == 6
    assert got[("wecom_outbox_depth", ())] == 0


def test_healthz_reports_store_and_queue() -> None:
    app = create_app(make_settings(), router=Router())
    c = app.test_client()
    response = c.get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.data) == {"store": "ok", "queue": "ok"}
    app.extensions["wecom.delivery"].stop()
    response = c.get("/healthz")
    assert response.status_code == 503 and json.loads(response.data)["queue"] == "stopped"
