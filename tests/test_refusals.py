"""Unauthenticated requests stay cheap: made-up app names never become metrics series, and a
flood of refused requests cannot flood the log."""

from __future__ import annotations

import logging

import pytest

from callback import Router
from callback.app import create_app
from callback.devtools.simulator import Simulator
from callback.inbound.refusals import Refusals
from tests.conftest import make_settings


def test_a_flood_of_refused_requests_logs_one_line_per_kind_and_no_new_series(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    c = create_app(make_settings(), router=Router()).test_client()
    query, body = sim.post(sim.text("x"))
    with caplog.at_level(logging.WARNING, logger="wecom.endpoint"):
        for n in range(300):
            forged = query | {"msg_signature": f"{n:040d}"}
            assert c.post("/wecom/callback/hr", query_string=forged, data=body).status_code == 403
            made_up = f"app{n}%0Aline injected {'x' * 200}"
            assert (
                c.post(f"/wecom/callback/{made_up}", query_string=query, data=body).status_code
                == 404
            )
    refused = [r.getMessage() for r in caplog.records if "callback refused" in r.getMessage()]
    assert len(refused) == 2, refused  # the first of each kind; the rest are counted
    assert "app=hr status=403 check=SignatureError" in refused[0]
    assert "app=(unknown) status=404 check=UnknownApp" in refused[1]
    assert "app0\\\\nline injected" in refused[1] and "\n" not in refused[1]
    assert len(refused[1]) < 300  # the made-up name is shortened
    metrics = c.get("/metrics").get_data(as_text=True)
    assert 'app="(unknown)"' in metrics and "app1" not in metrics and "injected" not in metrics
    assert metrics.count('wecom_callbacks_total{app="(unknown)"') == 1


def test_the_counted_refusals_are_summed_up_when_their_minute_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = Refusals(window_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="wecom.endpoint"):
        for _ in range(50):
            refusals.refused("hr", 403, "SignatureError", "msg_signature does not match", "1.2.3.4")
        refusals.refused("hr", 400, "BadRequest", "not XML", "1.2.3.4")  # another kind: logged
        now[0] = 61.0
        refusals.refused("hr", 400, "BadRequest", "not XML", "1.2.3.4")  # a new minute
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].endswith("msg_signature does not match remote=1.2.3.4")
    assert lines[1].endswith("not XML remote=1.2.3.4")
    assert "check=SignatureError: 49 more like this in the last 60 s" in lines[2]
    assert lines[3].endswith("not XML remote=1.2.3.4") and len(lines) == 4
