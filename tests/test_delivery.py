"""Delivery in one process: inbox de-duplication, the budget, background routes, the outbox,
recovery. The send API is the emulator, over HTTP."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from callback import Router, UpdateButtonReply
from callback.app import create_app
from callback.delivery.outbox import OutboxPolicy
from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorServer
from callback.devtools.simulator import Simulator, plaintext
from callback.inbound.messages import parse
from callback.outbound import TemplateCard, Text
from callback.outbound.client import RetryPolicy
from callback.store.records import InboxRecord
from tests.conftest import AES_KEY, TOKEN, emulator_settings, eventually

URL = "/wecom/callback/hr"


@pytest.fixture
def sim() -> Simulator:
    return Simulator.create(TOKEN, AES_KEY, DEFAULT_CORP_ID, agent_id=1000002)


Make = Callable[..., FlaskClient]


@pytest.fixture
def make(emulator_server: EmulatorServer, tmp_path: Path) -> Make:
    def build(router: Router, **server_settings: Any) -> FlaskClient:
        state = f"sqlite:///{tmp_path / 'state.db'}"
        settings = emulator_settings(emulator_server.url, state=state, **server_settings)
        return create_app(settings, router=router).test_client()

    return build


def post(
    c: FlaskClient, sim: Simulator, fields: dict[str, Any] | bytes
) -> tuple[int, bytes, float]:
    query, body = sim.post(fields)  # each call re-encrypts, as WeCom's retries do
    started = time.perf_counter()
    response = c.post(URL, query_string=query, data=body)
    return response.status_code, sim.open_reply(response.data), time.perf_counter() - started


def test_retry_of_a_finished_callback_gets_the_same_passive_reply(
    make: Make, sim: Simulator
) -> None:
    runs: list[str] = []
    router = Router()

    @router.text("hi")
    def hi(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(message.msg_id)
        return f"hello #{len(runs)}"

    c = make(router)
    fields = sim.text("hi")
    first = post(c, sim, fields)
    again = post(c, sim, fields)
    assert first[:2] == again[:2] and parse(first[1]).raw["Content"] == "hello #1"
    assert len(runs) == 1


def test_retry_of_a_running_callback_gets_an_empty_200(make: Make, sim: Simulator) -> None:
    started, release, runs = threading.Event(), threading.Event(), []
    router = Router()

    @router.text("slow")
    def slow(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(1)
        started.set()
        release.wait(5)
        return "done"

    c = make(router, reply_budget_ms=3000)
    fields = sim.text("slow")
    result: list[Any] = []
    first = threading.Thread(target=lambda: result.append(post(c, sim, fields)))
    first.start()
    assert started.wait(5)
    assert post(c, sim, fields)[:2] == (200, b"")  # retry while running
    release.set()
    first.join()
    assert parse(result[0][1]).raw["Content"] == "done" and runs == [1]


def test_late_reply_is_pushed_once(make: Make, sim: Simulator, emulator: Emulator) -> None:
    router = Router()

    @router.text("think")
    def think(message, ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.6)
        return "thought about it"

    c = make(router, reply_budget_ms=200)
    fields = sim.text("think")
    status, reply, elapsed = post(c, sim, fields)
    assert (status, reply) == (200, b"") and 0.15 < elapsed < 0.5
    eventually(lambda: len(emulator.messages()) == 1)
    assert post(c, sim, fields)[:2] == (200, b"")  # a retry after the push: nothing more
    time.sleep(0.3)
    (record,) = emulator.messages()
    assert record.body["text"] == {"content": "thought about it"} and record.touser == (sim.user,)


def test_background_route_answers_at_once_and_pushes(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()

    @router.text("report", background=True)
    def report(message, ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        ctx.send(Text("working on it"), [message.from_user])
        return "here is your report"

    c = make(router)
    status, reply, elapsed = post(c, sim, sim.text("report"))
    assert (status, reply) == (200, b"") and elapsed < 0.2
    eventually(lambda: len(emulator.messages()) == 2)
    assert [m.body["text"]["content"] for m in emulator.messages()] == [
        "working on it",
        "here is your report",
    ]


def test_long_passive_text_is_pushed_whole(make: Make, sim: Simulator, emulator: Emulator) -> None:
    long_text = "答" * 1000  # 3000 bytes: a passive reply would be truncated by WeCom
    router = Router()
    router.add("text", "long", lambda m, ctx: long_text)
    c = make(router)
    assert post(c, sim, sim.text("long"))[:2] == (200, b"")
    eventually(lambda: len(emulator.messages()) == 2)
    assert "".join(m.body["text"]["content"] for m in emulator.messages()) == long_text


def test_card_button_reply_pushed_as_update(make: Make, sim: Simulator, emulator: Emulator) -> None:
    router = Router()

    @router.card_action("OK", background=True)
    def ok(message, ctx):  # type: ignore[no-untyped-def]
        return UpdateButtonReply("Confirmed")

    c = make(router)
    client = c.application.extensions["wecom.client"]
    card = TemplateCard.button_interaction("t-1", "Confirm?", [("OK", "OK")])
    result = client.send("hr", card, [sim.user])
    code = emulator.issue_response_code(result.msgid)
    fields = sim.card_action("OK", task_id="t-1") | {"ResponseCode": code}
    assert post(c, sim, fields)[:2] == (200, b"")
    eventually(lambda: len(emulator.updates()) == 1)
    assert emulator.updates()[0].body["button"] == {"replace_name": "Confirmed"}


def test_events_in_the_same_second_are_all_handled(make: Make, sim: Simulator) -> None:
    seen: list[str] = []
    router = Router()
    router.add("event", "change_contact", lambda m, ctx: seen.append(m.user_id))
    c = make(router)
    fixed = int(time.time())
    for n in range(50):
        fields = sim.event("change_contact", user="sys", ChangeType="update_user", UserID=f"u{n}")
        fields["CreateTime"] = fixed
        assert post(c, sim, fields)[:2] == (200, b"")
    assert sorted(seen) == sorted(f"u{n}" for n in range(50))


def test_recovery_reruns_a_callback_whose_process_died(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    runs: list[int] = []
    router = Router()

    @router.text("job", background=True)
    def job(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(1)
        ctx.send(Text("side effect"), [message.from_user])
        return "job done"

    c = make(router, lease_s=1)
    delivery = c.application.extensions["wecom.delivery"]
    fields = sim.text("job")
    data = plaintext(fields)
    key = f"hr:{parse(data).dedup_key}"
    # a record claimed by a process that died mid-handler: its lease has run out
    delivery.store.inbox_claim(InboxRecord(key, "hr", data, False, owner="dead:1", lease_until=0))
    assert post(c, sim, fields)[:2] == (200, b"")  # WeCom's retry takes it over at once
    eventually(lambda: len(emulator.messages()) == 2)
    eventually(lambda: delivery.store.inbox_get(key).state == "done")
    assert runs == [1]
    # the process dies again after its sends, before recording the end: the maintenance thread
    # re-runs the handler, whose sends and reply are already in the outbox: nothing is sent twice
    with sqlite3.connect(delivery.store.path) as db:
        db.execute("UPDATE inbox SET state = 'running', owner = 'dead:2', lease_until = 0")
    eventually(lambda: len(runs) == 2, timeout=5)
    eventually(lambda: delivery.store.inbox_get(key).state == "done")
    time.sleep(0.3)
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["side effect", "job done"]


def test_outbox_retries_transient_failures(make: Make, sim: Simulator, emulator: Emulator) -> None:
    router = Router()
    router.add("text", "ping", lambda m, ctx: "pong", background=True)
    c = make(router)
    c.application.extensions["wecom.client"].retry = RetryPolicy(attempts=1)
    c.application.extensions["wecom.delivery"].outbox.policy = OutboxPolicy(base_s=0.05, cap_s=0.2)
    post(c, sim, sim.text("warm up"))  # a token first
    emulator.fail_next(3, errcode=-1, path="message/send")
    assert post(c, sim, sim.text("ping"))[:2] == (200, b"")
    eventually(lambda: len(emulator.messages()) == 1)
    time.sleep(0.5)
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["pong"]


def test_maintenance_forgets_callbacks_and_sent_replies_after_the_retention(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", "ping", lambda m, ctx: "pong", background=True)  # pushed: an outbox item
    router.add("text", "hi", lambda m, ctx: "hello")  # passive: only the inbox record
    c = make(router, inbox_retention_s=3600)
    delivery = c.application.extensions["wecom.delivery"]
    keys = []
    for word in ("ping", "hi"):
        fields = sim.text(word)
        keys.append(f"hr:{parse(plaintext(fields)).dedup_key}")
        assert post(c, sim, fields)[0] == 200
    eventually(lambda: len(emulator.messages()) == 1)
    reply_item = f"{keys[0]}:reply"
    eventually(lambda: all(delivery.store.inbox_get(k).state == "done" for k in keys))
    eventually(lambda: delivery.store.outbox_get(reply_item).state == "done")
    time.sleep(1)  # maintenance passes at the real time keep everything
    assert delivery.store.inbox_get(keys[1]) is not None
    delivery.clock = lambda: time.time() + 2 * 3600  # two hours on: older than the retention
    eventually(lambda: delivery.store.outbox_get(reply_item) is None, timeout=5)
    assert [delivery.store.inbox_get(k) for k in keys] == [None, None]
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["pong"]
