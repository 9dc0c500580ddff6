"""Delivery in one process, row by row of docs/delivery.md (each test starts with its row's id):
the inbox, the attempt deadlines, retries, the outbox. The send API is the emulator, over HTTP;
what the member saw is what the emulator received plus the passive replies."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient

from callback import Router, UpdateButtonReply
from callback.app import create_app
from callback.delivery import Delivery, budget, tasks
from callback.delivery.attempt import Attempt
from callback.delivery.outbox import OutboxPolicy
from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorServer
from callback.devtools.simulator import Simulator, plaintext
from callback.inbound.endpoint import ARRIVED_AT
from callback.inbound.messages import parse
from callback.inbound.replies import TEXT_LIMIT_BYTES, Reply, TextReply
from callback.outbound import TemplateCard, Text
from callback.outbound.client import RetryPolicy, WecomClient
from callback.store.records import DEAD, DONE, PENDING, InboxRecord
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
    c: FlaskClient,
    sim: Simulator,
    fields: dict[str, Any] | bytes,
    arrived_at: float | None = None,
) -> tuple[int, bytes, float]:
    query, body = sim.post(fields)  # each call re-encrypts, as WeCom's retries do
    environ = {} if arrived_at is None else {ARRIVED_AT: arrived_at}
    started = time.perf_counter()
    response = c.post(URL, query_string=query, data=body, environ_overrides=environ)
    return response.status_code, sim.open_reply(response.data), time.perf_counter() - started


def pushed(emulator: Emulator) -> list[str]:
    return [m.body["text"]["content"] for m in emulator.messages()]


def content(reply: bytes) -> str:
    return str(parse(reply).raw["Content"])


def test_d1_a_reply_in_time_is_passive_and_cached(make: Make, sim: Simulator) -> None:
    router = Router()
    router.add("text", "hi", lambda m, ctx: "hello")
    c = make(router)
    fields = sim.text("hi")
    status, reply, _ = post(c, sim, fields)
    assert status == 200 and content(reply) == "hello"
    record = c.application.extensions["wecom.delivery"].store.inbox_get(
        f"hr:{parse(plaintext(fields)).dedup_key}"
    )
    assert record.state == "done" and not record.pushed and content(record.reply) == "hello"


@pytest.mark.parametrize("as_json", [False, True])
def test_d1_a_passive_reply_goes_to_the_member_from_the_corp_in_the_callbacks_format(
    make: Make, sim: Simulator, as_json: bool
) -> None:
    router = Router()
    router.add("text", "hi", lambda m, ctx: "hello")
    c = make(router)
    query, body = sim.post(sim.text("hi"), as_json=as_json)
    before = int(time.time())
    response = c.post(URL, query_string=query, data=body)
    reply = sim.open_reply(response.data)
    fields = json.loads(reply) if as_json else dict(parse(reply).raw)
    assert fields["ToUserName"] == sim.user and fields["FromUserName"] == DEFAULT_CORP_ID
    assert before <= int(fields["CreateTime"]) <= time.time()
    assert fields["MsgType"] == "text" and fields["Content"] == "hello"


def test_d2_a_reply_late_for_its_deadline_is_pushed_once(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
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


def test_d2_past_its_deadline_a_callback_stays_claimed_until_its_handler_returns(
    make: Make, sim: Simulator, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Answered empty at the deadline, the callback is still running (not done): were the
    process to die now, recovery would re-run it; its reply is pushed when it returns."""
    release = threading.Event()
    router = Router()

    @router.text("think")
    def think(message, ctx):  # type: ignore[no-untyped-def]
        release.wait(5)
        return "thought about it"

    c = make(router, reply_budget_ms=300)
    store = c.application.extensions["wecom.delivery"].store
    fields = sim.text("think")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    try:
        with caplog.at_level(logging.WARNING, logger="wecom.delivery"):
            assert post(c, sim, fields)[:2] == (200, b"")
        assert store.inbox_get(key).state == "running"
    finally:
        release.set()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "wecom.delivery"]
    assert re.fullmatch(
        rf"handler \S+\.think still running at its attempt's deadline \(0\.3 s\) "
        rf"app=hr key={key}; its reply will be pushed",
        line,
    )
    eventually(lambda: pushed(emulator) == ["thought about it"])
    eventually(lambda: store.inbox_get(key).state == "done")


def test_a_handler_returning_as_its_budget_runs_out_answers_passively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler thread has stored its reply but is descheduled before it wakes the request
    thread, whose wait times out: the reply is still the passive answer (not lost, not late)."""

    class WakesLate(threading.Event):
        def set(self) -> None:
            time.sleep(0.3)
            super().set()

    monkeypatch.setattr(budget, "threading", SimpleNamespace(Lock=threading.Lock, Event=WakesLate))
    late: list[Reply | None] = []
    in_time, reply = budget.within(
        0.1,
        lambda: TextReply("just in time"),
        lambda job: threading.Thread(target=job).start(),
        late.append,
    )
    assert (in_time, reply) == (True, TextReply("just in time"))
    time.sleep(0.4)
    assert late == []


def test_d3_an_attempt_that_waited_past_its_deadline_is_answered_at_once_and_pushed(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    runs: list[str] = []
    router = Router()

    @router.text("queued")
    def queued(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(threading.current_thread().name)
        time.sleep(0.2)
        return "queued reply"

    c = make(router)  # a 4 s budget, counted from the arrival: it waited for a thread 3.95 s
    status, reply, elapsed = post(c, sim, sim.text("queued"), arrived_at=time.time() - 3.95)
    assert (status, reply) == (200, b"") and elapsed < 0.15  # not the 0.2 s of the handler
    eventually(lambda: pushed(emulator) == ["queued reply"])
    assert len(runs) == 1 and runs[0].startswith("wecom-handler")
    # with time left, the same route answers passively: the arrival is what decided
    status, reply, _ = post(c, sim, sim.text("queued"), arrived_at=time.time() - 3.0)
    assert content(reply) == "queued reply" and len(pushed(emulator)) == 1


def test_d4_an_old_wecom_timestamp_makes_the_attempt_abandoned_when_clocks_agree(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", re.compile(r"^q"), lambda m, ctx: f"re: {m.content}")
    c = make(router)
    for n in range(3):  # fresh callbacks: WeCom's clock and ours agree
        assert content(post(c, sim, sim.text(f"q{n}"))[1]) == f"re: q{n}"
    held_up = sim.text("q-late")
    sim.clock = lambda: time.time() - 4.6  # WeCom sent it 4.6 s ago; a proxy held it
    status, reply, _ = post(c, sim, held_up)
    assert (status, reply) == (200, b"")
    eventually(lambda: pushed(emulator) == ["re: q-late"])


def test_d5_the_timestamp_is_not_used_when_clocks_disagree(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", re.compile(r"^q"), lambda m, ctx: f"re: {m.content}")
    c = make(router)
    sim.clock = lambda: time.time() - 10  # WeCom's clock is 10 s behind ours
    for n in range(4):
        assert content(post(c, sim, sim.text(f"q{n}"))[1]) == f"re: q{n}"
    assert pushed(emulator) == []


def test_d6_a_background_route_answers_at_once_and_pushes(
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
    assert pushed(emulator) == ["working on it", "here is your report"]


@pytest.mark.parametrize("outcome", ["none", "raises"])
def test_d7_no_reply_or_a_failing_handler_sends_nothing(
    make: Make, sim: Simulator, emulator: Emulator, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []
    router = Router()

    @router.text("quiet")
    def quiet(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(1)
        if outcome == "raises":
            raise RuntimeError("boom")

    c = make(router)
    fields = sim.text("quiet")
    assert post(c, sim, fields)[:2] == (200, b"")
    assert post(c, sim, fields)[:2] == (200, b"")  # a retry: not run again
    time.sleep(0.3)
    assert runs == [1] and emulator.messages() == []
    record = c.application.extensions["wecom.delivery"].store.inbox_get(
        f"hr:{parse(plaintext(fields)).dedup_key}"
    )
    assert record.state == "done" and record.reply is None and not record.pushed
    failed = [r.getMessage() for r in caplog.records if "quiet failed" in r.getMessage()]
    assert len(failed) == (1 if outcome == "raises" else 0)
    for line in failed:
        assert re.fullmatch(rf"handler \S+\.quiet failed app=hr type=text key={record.key}", line)


def test_d8_a_long_passive_text_is_pushed_whole_off_the_request_thread(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    long_text = "答" * 1000  # 3000 bytes: a passive reply would be truncated by WeCom
    router = Router()
    router.add("text", "long", lambda m, ctx: long_text)
    c = make(router)
    emulator.set_latency(1500, path="message/send")  # the send API is slow today
    status, reply, elapsed = post(c, sim, sim.text("long"))
    assert (status, reply) == (200, b"") and elapsed < 0.5  # no send on the request thread
    emulator.set_latency(0, path="message/send")
    eventually(lambda: len(emulator.messages()) == 2)
    assert "".join(pushed(emulator)) == long_text


def test_d8_a_passive_text_of_exactly_the_limit_stays_passive(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    text = "a" * TEXT_LIMIT_BYTES  # WeCom shows 2048 bytes whole
    router = Router()
    router.add("text", "edge", lambda m, ctx: text)
    c = make(router)
    status, reply, _ = post(c, sim, sim.text("edge"))
    assert status == 200 and content(reply) == text
    time.sleep(0.2)
    assert emulator.messages() == []


def test_ctx_send_options_reach_wecom(make: Make, sim: Simulator, emulator: Emulator) -> None:
    router = Router()

    @router.text("secret")
    def secret(message, ctx):  # type: ignore[no-untyped-def]
        ctx.send(Text("for your eyes only"), [message.from_user], safe=1)

    c = make(router)
    post(c, sim, sim.text("secret"))
    (sent,) = emulator.messages()
    assert sent.body["safe"] == 1 and sent.body["text"] == {"content": "for your eyes only"}


def test_d9_no_route_is_done_at_once(make: Make, sim: Simulator) -> None:
    c = make(Router())
    fields = sim.text("nobody listens")
    assert post(c, sim, fields)[:2] == (200, b"")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    record = c.application.extensions["wecom.delivery"].store.inbox_get(key)
    assert record.state == "done" and record.reply is None


def test_d10_a_retry_while_the_handler_runs_makes_its_reply_pushed(
    make: Make, sim: Simulator, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The original waits within its own budget, but WeCom has given up on it: the reply must
    not be its passive answer (the member would see nothing): it is pushed."""
    caplog.set_level(logging.INFO, logger="wecom.delivery")
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
    assert post(c, sim, fields)[:2] == (200, b"")  # the retry: answered at once
    release.set()  # the handler returns well inside the first attempt's budget
    first.join()
    assert result[0][:2] == (200, b"")  # no passive reply to an attempt WeCom gave up on
    eventually(lambda: pushed(emulator) == ["done"])
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    assert f"retry answered while {key} ran: its reply is pushed" in [
        r.getMessage() for r in caplog.records
    ]
    assert post(c, sim, fields)[:2] == (200, b"")  # a third attempt: nothing more
    time.sleep(0.3)
    assert pushed(emulator) == ["done"] and runs == [1]


def test_d11_a_retry_of_a_finished_callback_gets_the_same_passive_reply(
    make: Make, sim: Simulator, emulator: Emulator
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
    assert first[:2] == again[:2] and content(first[1]) == "hello #1"
    assert len(runs) == 1 and emulator.messages() == []


def test_d12_a_retry_after_a_push_gets_an_empty_200(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", "ping", lambda m, ctx: "pong", background=True)
    c = make(router)
    fields = sim.text("ping")
    assert post(c, sim, fields)[:2] == (200, b"")
    eventually(lambda: pushed(emulator) == ["pong"])
    store = c.application.extensions["wecom.delivery"].store
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    eventually(lambda: store.inbox_get(key).state == "done")
    assert store.inbox_get(key).pushed and store.inbox_get(key).reply is None
    assert post(c, sim, fields)[:2] == (200, b"")
    time.sleep(0.3)
    assert pushed(emulator) == ["pong"]


def test_d14_a_retry_takes_over_a_callback_whose_process_died(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    runs: list[int] = []
    router = Router()

    @router.text("job")
    def job(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(1)
        ctx.send(Text("side effect"), [message.from_user])
        return "job done"

    c = make(router, lease_s=1)
    delivery = c.application.extensions["wecom.delivery"]
    fields = sim.text("job")
    data = plaintext(fields)
    key = f"hr:{parse(data).dedup_key}"
    # a record claimed by a process that died mid-handler, after its ctx.send: its lease is out
    delivery.store.inbox_claim(InboxRecord(key, "hr", data, False, owner="dead:1", lease_until=0))
    delivery.outbox.send(f"{key}:send:0", "hr", Text("side effect"), [sim.user])
    assert post(c, sim, fields)[:2] == (200, b"")  # WeCom's retry takes it over at once
    eventually(lambda: delivery.store.inbox_get(key).state == "done")
    eventually(lambda: len(emulator.messages()) == 2)
    time.sleep(0.3)
    assert runs == [1] and pushed(emulator) == ["side effect", "job done"]


def test_d14_a_retry_that_takes_over_answers_at_once_and_pushes(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()

    @router.text("job")
    def job(message, ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return "job done"

    c = make(router, lease_s=1)
    delivery = c.application.extensions["wecom.delivery"]
    fields = sim.text("job")
    data = plaintext(fields)
    key = f"hr:{parse(data).dedup_key}"
    delivery.store.inbox_claim(InboxRecord(key, "hr", data, False, owner="dead:1", lease_until=0))
    status, reply, elapsed = post(c, sim, fields)
    assert (status, reply) == (200, b"") and elapsed < 0.3  # not after the 0.5 s handler
    eventually(lambda: pushed(emulator) == ["job done"])


def test_d15_maintenance_reruns_a_callback_whose_process_died(
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
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    assert post(c, sim, fields)[:2] == (200, b"")
    eventually(lambda: delivery.store.inbox_get(key).state == "done")
    eventually(lambda: len(emulator.messages()) == 2)
    # the process dies after its sends, before recording the end: no retry comes; the
    # maintenance thread re-runs the handler, whose sends and reply are already in the outbox
    with sqlite3.connect(delivery.store.path) as db:
        db.execute("UPDATE inbox SET state = 'running', owner = 'dead:2', lease_until = 0")
    eventually(lambda: len(runs) == 2, timeout=5)
    eventually(lambda: delivery.store.inbox_get(key).state == "done")
    time.sleep(0.3)
    assert pushed(emulator) == ["side effect", "job done"]


def test_d20_a_late_reply_with_no_send_form_is_kept_as_a_dead_letter(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()

    @router.card_action("OK")
    def ok(message, ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.4)  # late: the update must be pushed, and needs the ResponseCode
        return UpdateButtonReply("Confirmed")

    c = make(router, reply_budget_ms=100)
    fields = sim.card_action("OK", task_id="t-1")
    del fields["ResponseCode"]  # as older clients send it: the update cannot be pushed
    assert post(c, sim, fields)[:2] == (200, b"")
    outbox = c.application.extensions["wecom.delivery"].store
    eventually(lambda: len(outbox.outbox_list([DEAD], 10)) == 1)
    (dead,) = outbox.outbox_list([DEAD], 10)
    assert "ResponseCode" in dead.error and "UpdateButtonReply" in str(dead.bodies)
    assert emulator.updates() == [] and emulator.messages() == []


def test_d20_a_card_update_with_its_response_code_is_pushed(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
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


def test_d21_d22_no_answer_is_resent_only_under_the_duplicate_check(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    """The send API processes each message, then answers too late for our client. The reply
    (duplicate check on) is sent again and WeCom drops the copies; a deliberate repeat of the
    same text (sent without the check, so that WeCom delivers it) is not sent again."""
    router = Router()

    @router.text("twice", background=True)
    def twice(message, ctx):  # type: ignore[no-untyped-def]
        ctx.send(Text("same words"), [message.from_user])
        ctx.send(Text("same words"), [message.from_user])  # meant: two messages

    c = make(router)
    c.application.extensions["wecom.client"].timeout = (1.0, 0.3)
    c.application.extensions["wecom.client"].retry = RetryPolicy(attempts=2, base_s=0.01)
    delivery = c.application.extensions["wecom.delivery"]
    delivery.outbox.policy = OutboxPolicy(base_s=0.05, cap_s=0.2)
    post(c, sim, sim.text("warm up"))  # a token first
    emulator.set_latency(600, path="message/send")  # delivered, but answered after 0.6 s
    assert post(c, sim, sim.text("twice"))[:2] == (200, b"")
    eventually(lambda: len(delivery.store.outbox_list([DEAD], 10)) == 1, timeout=15)
    emulator.set_latency(0, path="message/send")
    (dead,) = delivery.store.outbox_list([DEAD], 10)
    assert dead.id.endswith(":send:1") and "may have been delivered" in dead.error
    assert "wecom outbox retry" in dead.error
    eventually(lambda: delivery.store.outbox_list(["pending"], 10) == [], timeout=15)
    time.sleep(0.5)
    assert pushed(emulator) == ["same words", "same words"]  # each send seen once


def test_d23_a_stalled_attempt_is_fenced_out_by_the_new_holder(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    c = make(Router())
    delivery = c.application.extensions["wecom.delivery"]
    delivery.stop()  # no maintenance pass: this test plays both senders
    outbox = delivery.outbox
    outbox.policy = OutboxPolicy(lease_s=0.5)
    outbox.add("fenced", "hr", "message/send", outbox.client.bodies("hr", Text("once"), [sim.user]))
    stalled = delivery.store.outbox_claim("fenced", "stalled/1", 0.5)
    time.sleep(0.6)  # the first sender stalls past its lease: the item is taken over
    taken = delivery.store.outbox_claim("fenced", "live/1", 30)
    assert stalled is not None and taken is not None
    assert outbox.attempt(stalled).state == "pending"  # stopped by the fence, nothing saved
    assert emulator.messages() == []
    assert outbox.attempt(taken).state == "done"
    assert pushed(emulator) == ["once"]


@pytest.mark.parametrize("fault", [{"errcode": -1}, {"errcode": 45009}, {"http_status": 502}])
def test_d24_the_outbox_retries_until_delivered(
    make: Make, sim: Simulator, emulator: Emulator, fault: dict[str, Any]
) -> None:
    router = Router()
    router.add("text", "ping", lambda m, ctx: "pong", background=True)
    c = make(router)
    c.application.extensions["wecom.client"].retry = RetryPolicy(attempts=1)
    c.application.extensions["wecom.delivery"].outbox.policy = OutboxPolicy(base_s=0.05, cap_s=0.2)
    post(c, sim, sim.text("warm up"))  # a token first
    emulator.fail_next(3, path="message/send", **fault)
    assert post(c, sim, sim.text("ping"))[:2] == (200, b"")
    eventually(lambda: len(emulator.messages()) == 1)
    time.sleep(0.5)
    assert pushed(emulator) == ["pong"]
    assert emulator.stats().calls["message/send"] == 4


@pytest.mark.parametrize("background", [False, True])
def test_the_handler_gets_the_routes_match_and_a_log_naming_the_callback(
    make: Make, sim: Simulator, emulator: Emulator, caplog: pytest.LogCaptureFixture,
    background: bool,
) -> None:  # fmt: skip
    router = Router()

    @router.text(re.compile(r"^order (\d+)$"), background=background)
    def order(message, ctx):  # type: ignore[no-untyped-def]
        assert ctx.message is message and ctx.app == "hr"
        ctx.log.info("looking up %s", ctx.match[1])
        return f"order {ctx.match[1]} ships tomorrow"

    c = make(router)
    fields = sim.text("order 42")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    with caplog.at_level(logging.INFO, logger=order.__module__):
        reply = post(c, sim, fields)[1]
        if background:
            eventually(lambda: pushed(emulator) == ["order 42 ships tomorrow"])
        else:
            assert content(reply) == "order 42 ships tomorrow"
    lines = [r.getMessage() for r in caplog.records if r.name == order.__module__]
    assert lines == [f"[hr {key}] looking up 42"]


def test_a_pushed_reply_goes_at_once_not_at_the_next_maintenance_pass(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", "ping", lambda m, ctx: "pong", background=True)
    c = make(router)
    c.application.extensions["wecom.delivery"].stop()  # no maintenance pass from now on
    post(c, sim, sim.text("ping"))
    eventually(lambda: pushed(emulator) == ["pong"], timeout=3)


def test_a_handler_running_past_its_lease_keeps_it_and_runs_once(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    """The maintenance thread renews the lease of a running handler: recovery, which takes
    over callbacks whose lease ran out, leaves it alone (passive and background routes)."""
    runs: list[str] = []
    router = Router()

    @router.text(re.compile(r"^slow"))
    def slow(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(message.content)
        time.sleep(1.6)
        return f"{message.content} done"

    router.add("text", re.compile(r"^bg"), slow, background=True)
    c = make(router, lease_s=1, reply_budget_ms=300)  # "slow" waits within its budget
    delivery = c.application.extensions["wecom.delivery"]
    keys = []
    for word in ("slow", "bg"):
        fields = sim.text(word)
        keys.append(f"hr:{parse(plaintext(fields)).dedup_key}")
        post(c, sim, fields)
    time.sleep(1.1)  # past the first lease: renewed by the maintenance thread
    for key in keys:
        record = delivery.store.inbox_get(key)
        assert record.state == "running" and record.owner == delivery.owner
        assert record.lease_until > time.time()
    eventually(lambda: sorted(pushed(emulator)) == ["bg done", "slow done"])
    time.sleep(0.3)
    assert sorted(runs) == ["bg", "slow"]


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
    assert pushed(emulator) == ["pong"]


def learn_fast(c: FlaskClient, sim: Simulator, word: str, runs: int = 16) -> None:
    for n in range(runs):
        assert post(c, sim, sim.text(f"{word} {n}"))[0] == 200


def test_d26_a_fast_route_runs_on_the_request_thread_and_its_sends_do_not(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    threads: list[str] = []
    router = Router()

    @router.text(re.compile(r"^fast"))
    def fast(message, ctx):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        if message.content == "fast and send":
            ctx.send(Text("sent"), [message.from_user])
        return "ok"

    c = make(router)
    client = c.application.extensions["wecom.client"]
    session_threads: list[str] = []
    original = client.session.request

    def request(*args: Any, **kw: Any) -> Any:  # records which thread calls the send API
        session_threads.append(threading.current_thread().name)
        return original(*args, **kw)

    client.session.request = request
    learn_fast(c, sim, "fast")
    assert all(name.startswith("wecom-handler") for name in threads)  # learning
    threads.clear()
    assert content(post(c, sim, sim.text("fast again"))[1]) == "ok"
    assert not threads[0].startswith("wecom-handler")  # the request thread itself
    _, reply, _ = post(c, sim, sim.text("fast and send"))
    assert content(reply) == "ok" and pushed(emulator) == ["sent"]
    assert session_threads and all(n.startswith("wecom-outbox") for n in session_threads)
    threads.clear()
    post(c, sim, sim.text("fast after sending"))
    assert threads[0].startswith("wecom-handler")  # a run that sent sends the route back


def test_d27_a_fast_route_that_turns_slow_on_the_request_thread_pushes_its_reply_once(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    slow = threading.Event()

    @router.text(re.compile(r"^fast"))
    def fast(message, ctx):  # type: ignore[no-untyped-def]
        if slow.is_set():
            time.sleep(0.5)  # past the 0.3 s budget, on the request thread
        return f"re: {message.content}"

    c = make(router, reply_budget_ms=300)
    learn_fast(c, sim, "fast")
    slow.set()
    fields = sim.text("fast turned slow")
    result: list[Any] = []
    first = threading.Thread(target=lambda: result.append(post(c, sim, fields)))
    first.start()
    time.sleep(0.2)
    assert post(c, sim, fields)[:2] == (200, b"")  # WeCom's retry, while it still runs
    first.join()
    assert result[0][:2] == (200, b"") and result[0][2] > 0.45  # late: no passive reply
    eventually(lambda: pushed(emulator) == ["re: fast turned slow"])
    # one slow run sent the route back to handler threads: answered at the deadline, pushed
    status, reply, elapsed = post(c, sim, sim.text("fast slow alone"))
    assert (status, reply) == (200, b"") and elapsed < 0.45
    eventually(lambda: pushed(emulator) == ["re: fast turned slow", "re: fast slow alone"])
    time.sleep(0.3)
    assert len(pushed(emulator)) == 2


# -- with a task queue (queue = "celery"): web nodes enqueue, workers run ---------------------


class InProcessQueue:
    """Celery's broker, in process: tasks wait here until the test hands them to a worker."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[str, str]] = []
        self.deliveries: list[str] = []
        self.state = "ok"

    def run_callback(self, key: str, token: str) -> None:
        self.callbacks.append((key, token))

    def deliver(self, item_id: str) -> None:
        self.deliveries.append(item_id)

    def health(self) -> str:
        return self.state


Pair = tuple[FlaskClient, Delivery, InProcessQueue]


@pytest.fixture
def celery_pair(
    emulator_server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Pair]]:
    """A web node whose queue is an InProcessQueue, and a worker's Delivery on the same store."""
    workers: list[Delivery] = []

    def build(router: Router, **server_settings: Any) -> Pair:
        queue = InProcessQueue()
        monkeypatch.setattr(tasks, "make_celery", lambda settings: None)
        monkeypatch.setattr(tasks, "CeleryQueue", lambda app: queue)
        server = {"queue": "celery", "broker_url": "redis://127.0.0.1:9/0"} | server_settings
        settings = emulator_settings(
            emulator_server.url, state=f"sqlite:///{tmp_path / 'state.db'}", **server
        )
        c = create_app(settings, router=router).test_client()
        web = c.application.extensions["wecom.delivery"]
        client = WecomClient(settings.apps, web.store)
        worker = Delivery(settings, web.store, client, router.compile())
        workers.append(worker)
        return c, worker, queue

    yield build
    for worker in workers:
        worker.stop()


def test_q1_a_web_node_hands_background_work_to_a_worker(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator
) -> None:
    runs: list[str] = []
    router = Router()

    @router.text("report", app="hr", background=True)
    def report(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(threading.current_thread().name)
        return f"your {message.content}"

    c, worker, queue = celery_pair(router)
    fields = sim.text("report")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    assert post(c, sim, fields)[:2] == (200, b"")
    time.sleep(0.2)
    assert runs == [] and len(queue.callbacks) == 1  # the web node only enqueued it
    ((queued_key, token),) = queue.callbacks
    assert queued_key == key and worker.store.inbox_get(key).owner == token
    assert worker.run_queued(key, token) is None
    assert len(runs) == 1 and worker.store.inbox_get(key).state == "done"
    eventually(lambda: pushed(emulator) == ["your report"])
    assert worker.run_queued(key, token) is None  # the task delivered again: nothing more
    time.sleep(0.2)
    assert len(runs) == 1 and pushed(emulator) == ["your report"]


def test_q2_a_task_for_a_callback_held_by_a_live_worker_waits_for_its_lease(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator
) -> None:
    runs: list[int] = []
    router = Router()
    router.add("text", "job", lambda m, ctx: runs.append(1) or "done", background=True)
    c, worker, queue = celery_pair(router, lease_s=30)
    fields = sim.text("job")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    post(c, sim, fields)
    ((_, token),) = queue.callbacks
    assert worker.store.inbox_transfer(key, token, "live-worker:1", 30)  # another worker has it
    wait = worker.run_queued(key, token)
    assert wait is not None and 29 < wait <= 30 and runs == []
    assert worker.store.inbox_get(key).owner == "live-worker:1"


def test_q3_a_task_for_a_callback_whose_worker_died_runs_it(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator
) -> None:
    runs: list[int] = []
    held: list[tuple[str, bool]] = []
    router = Router()

    @router.text("job", background=True)
    def job(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(1)
        record = worker.store.inbox_get(key)
        held.append((record.owner, record.lease_until > time.time()))
        return "done"

    c, worker, queue = celery_pair(router, lease_s=1)
    fields = sim.text("job")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    post(c, sim, fields)
    ((_, token),) = queue.callbacks
    assert worker.store.inbox_transfer(key, token, "dead-worker:1", 0)  # its lease is over
    assert worker.run_queued(key, token) is None
    assert runs == [1] and worker.store.inbox_get(key).state == "done"
    assert held == [(worker.owner, True)]  # it ran under a live lease of its own
    eventually(lambda: pushed(emulator) == ["done"])


def test_q4_the_web_nodes_health_is_its_queues(
    celery_pair: Callable[..., Pair], sim: Simulator
) -> None:
    c, worker, queue = celery_pair(Router())
    assert worker.health() == "worker threads not started in this process"
    assert c.get("/healthz").json == {"store": "ok", "queue": "ok"}
    queue.state = "broker unreachable: connection refused"
    response = c.get("/healthz")
    assert response.status_code == 503
    assert response.json["queue"] == "broker unreachable: connection refused"


def test_health_says_when_the_worker_threads_are_stopped(make: Make) -> None:
    c = make(Router())
    assert c.get("/healthz").json == {"store": "ok", "queue": "ok"}
    c.application.extensions["wecom.delivery"].stop()
    response = c.get("/healthz")
    assert response.status_code == 503 and response.json["queue"] == "stopped"


def test_q5_a_live_worker_holding_a_callback_briefly_is_waited_for_half_a_second(
    celery_pair: Callable[..., Pair], sim: Simulator
) -> None:
    router = Router()
    router.add("text", "job", lambda m, ctx: "done", background=True)
    c, worker, queue = celery_pair(router)
    fields = sim.text("job")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    post(c, sim, fields)
    ((_, token),) = queue.callbacks
    assert worker.store.inbox_transfer(key, token, "live-worker:1", 0.2)  # ends in 0.2 s
    assert worker.run_queued(key, token) == 0.5  # not a busy loop of retries


def test_q5b_a_lease_that_ends_exactly_now_is_over(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator
) -> None:
    runs: list[int] = []
    router = Router()
    router.add("text", "job", lambda m, ctx: runs.append(1) or "done", background=True)
    c, worker, queue = celery_pair(router)
    fields = sim.text("job")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    post(c, sim, fields)
    ((_, token),) = queue.callbacks
    now = time.time()
    worker.clock = worker.store.clock = lambda: now  # type: ignore[method-assign]
    assert worker.store.inbox_transfer(key, token, "dead-worker:1", 0)  # lease_until == now
    assert worker.run_queued(key, token) is None and runs == [1]  # taken over, run here
    eventually(lambda: len(emulator.messages()) >= 1)  # its answer, pushed (before the test ends)
    time.sleep(0.2)
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["done"]


class _Interleaved:
    """The worker's store, with another worker's claim slipped in just before its own."""

    def __init__(self, store: Any, before_claim: Callable[[], None]) -> None:
        self._store, self._before = store, before_claim

    def inbox_claim(self, record: InboxRecord) -> InboxRecord:
        self._before()
        return self._store.inbox_claim(record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.mark.parametrize("other", ["still running", "already done"])
def test_q9_two_workers_taking_over_a_dead_workers_callback_run_it_once(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator, other: str
) -> None:
    runs: list[int] = []
    router = Router()
    router.add("text", "job", lambda m, ctx: runs.append(1) or "done", background=True)
    c, worker, queue = celery_pair(router, lease_s=30)
    fields = sim.text("job")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    post(c, sim, fields)
    ((_, token),) = queue.callbacks
    store = worker.store
    assert store.inbox_transfer(key, token, "dead-worker:1", 0)  # its worker died

    def the_other_worker_first() -> None:
        taken = store.inbox_claim(replace(store.inbox_get(key), owner="other:1",
                                          lease_until=time.time() + 30))  # fmt: skip
        assert taken.created and taken.owner == "other:1"
        if other == "already done":
            assert store.inbox_finish(key, "other:1", None, pushed=False)

    worker.store = _Interleaved(store, the_other_worker_first)  # type: ignore[assignment]
    wait = worker.run_queued(key, token)
    assert runs == []  # the other worker has it: never run twice
    assert wait == (None if other == "already done" else 30)
    assert store.inbox_get(key).owner == "other:1"


@pytest.mark.parametrize("plaintext_of", ["garbage", "no route"])
def test_q6_a_task_whose_callback_cannot_run_finishes_it(
    celery_pair: Callable[..., Pair], sim: Simulator, plaintext_of: str
) -> None:
    worker = celery_pair(Router())[1]
    data = b"<xml>not a callback" if plaintext_of == "garbage" else plaintext(sim.text("hi"))
    worker.store.inbox_claim(InboxRecord("hr:x", "hr", data, False, owner="queued:1"))
    assert worker.run_queued("hr:x", "queued:1") is None
    record = worker.store.inbox_get("hr:x")
    assert record.state == "done" and record.reply is None and not record.pushed
    items = worker.store.outbox_list([PENDING, DONE, DEAD], 1000)
    assert [item.id for item in items if item.id.startswith("hr:x:")] == []  # nothing to send
    # (not emulator.messages(): the session's emulator may get an earlier test's late push)


def test_q7_web_nodes_leave_recovery_to_the_workers(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", "job", lambda m, ctx: "recovered", background=True)
    c, worker, _ = celery_pair(router, lease_s=1)
    web = c.application.extensions["wecom.delivery"]
    fields = sim.text("job")
    data = plaintext(fields)
    key = f"hr:{parse(data).dedup_key}"
    web.store.inbox_claim(InboxRecord(key, "hr", data, False, owner="dead:1", lease_until=0))
    time.sleep(1.2)  # two maintenance passes of the web node
    assert web.store.inbox_get(key).owner == "dead:1" and pushed(emulator) == []
    worker.start()  # a worker process starts its maintenance thread: it recovers the callback
    eventually(lambda: pushed(emulator) == ["recovered"])


@pytest.mark.parametrize("plaintext_of", ["garbage", "no route"])
def test_d15_recovery_finishes_a_callback_that_cannot_run(
    make: Make, sim: Simulator, emulator: Emulator, plaintext_of: str
) -> None:
    router = Router()
    router.add("text", "routed", lambda m, ctx: "recovered", app="hr")
    c = make(router)
    delivery = c.application.extensions["wecom.delivery"]
    delivery.stop()
    data = b"<xml>not a callback" if plaintext_of == "garbage" else plaintext(sim.text("hi"))
    delivery.store.inbox_claim(InboxRecord("hr:a", "hr", data, False, owner="dead:1"))
    ok = plaintext(sim.text("routed"))
    delivery.store.inbox_claim(InboxRecord("hr:b", "hr", ok, False, owner="dead:1"))
    assert delivery.upkeep.recover() == 2
    record = delivery.store.inbox_get("hr:a")
    assert record.state == "done" and record.reply is None and not record.pushed
    eventually(lambda: pushed(emulator) == ["recovered"])  # the pass went on to the next one


def test_d16_a_callback_taken_over_while_its_handler_ran_is_answered_by_the_new_owner(
    make: Make, sim: Simulator, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Our lease was lost (a long pause): the new owner answers; our reply is dropped."""
    started, release = threading.Event(), threading.Event()
    router = Router()

    @router.text("paused")
    def paused(message, ctx):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(5)
        return "from the old owner"

    c = make(router)
    delivery = c.application.extensions["wecom.delivery"]
    fields = sim.text("paused")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    result: list[Any] = []
    first = threading.Thread(target=lambda: result.append(post(c, sim, fields)))
    first.start()
    try:
        assert started.wait(5)
        assert delivery.store.inbox_transfer(key, delivery.owner, "other:1", 30)
    finally:
        release.set()
    first.join()
    assert result[0][:2] == (200, b"")
    time.sleep(0.3)
    assert emulator.messages() == [] and delivery.store.inbox_get(key).owner == "other:1"
    assert (
        f"callback {key} was taken over while its handler ran; reply dropped here, the new "
        "owner answers" in [r.getMessage() for r in caplog.records]
    )


def test_retries_and_handler_errors_are_counted_in_the_metrics(make: Make, sim: Simulator) -> None:
    router = Router()
    router.add("text", "hi", lambda m, ctx: "hello")

    @router.text("boom")
    def boom(message, ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    c = make(router)
    fields = sim.text("hi")
    post(c, sim, fields)
    post(c, sim, fields)  # WeCom's retry
    post(c, sim, sim.text("boom"))
    page = c.get("/metrics").get_data(as_text=True)
    assert 'wecom_retries_absorbed_total{app="hr"} 1.0' in page
    assert re.search(r'wecom_handler_errors_total\{app="hr",handler="\S+\.boom"\} 1\.0', page)


def test_q8_a_web_node_hands_its_pushes_to_the_queue(
    celery_pair: Callable[..., Pair], sim: Simulator, emulator: Emulator
) -> None:
    router = Router()
    router.add("text", "long", lambda m, ctx: "答" * 1000)  # too long to be passive: pushed
    c, worker, queue = celery_pair(router)
    fields = sim.text("long")
    key = f"hr:{parse(plaintext(fields)).dedup_key}"
    assert post(c, sim, fields)[:2] == (200, b"")
    assert queue.deliveries == [f"{key}:reply"]
    time.sleep(0.2)
    assert emulator.messages() == []  # the web node sends nothing itself
    worker.outbox.deliver(f"{key}:reply")  # the worker's task
    assert "".join(pushed(emulator)) == "答" * 1000


def test_the_reply_budget_is_reply_budget_ms(make: Make) -> None:
    delivery = make(Router(), reply_budget_ms=1500).application.extensions["wecom.delivery"]
    assert delivery.attempt(1_000.0, None) == Attempt(1_000.0, 1_001.5)


def test_background_handlers_run_on_worker_threads_threads(
    make: Make, sim: Simulator, emulator: Emulator
) -> None:
    running, most = [0], [0]
    lock = threading.Lock()
    router = Router()

    @router.text(re.compile(r"^job"), background=True)
    def job(message, ctx):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return "done"

    c = make(router, worker_threads=1)
    for n in range(2):
        post(c, sim, sim.text(f"job {n}"))
    eventually(lambda: pushed(emulator) == ["done", "done"])
    assert most == [1]  # one handler thread: one at a time


class _CountingStore:
    """A real store, counting the maintenance chores that reach it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if name in ("inbox_renew", "inbox_expired", "inbox_purge", "outbox_purge"):
            self.calls.append(name)
        return found


@pytest.mark.parametrize(("lease_s", "recover_every"), [(3, 1.5), (30, 5.0)])
def test_maintenance_runs_each_chore_on_its_own_period(
    emulator_server: EmulatorServer, lease_s: int, recover_every: float
) -> None:
    """Leases renewed every lease_s / 3, recovery every min(lease_s / 2, 5) s, the purge
    hourly: each exactly at its period, not before."""
    from callback.store import MemoryStore

    settings = emulator_settings(emulator_server.url, state="memory://", lease_s=lease_s)
    store = _CountingStore(MemoryStore())
    now = [1_800_000_000.0]
    d = Delivery(settings, store, WecomClient(settings.apps, store._store), Router().compile(),
                 clock=lambda: now[0])  # fmt: skip
    last: dict[str, float] = {}

    def chores_at(t: float) -> list[str]:
        now[0] = 1_800_000_000.0 + t
        store.calls.clear()
        with d.workers.holding("hr:running"):  # a handler runs here: its lease is renewed
            d.upkeep.maintain(last)
        return sorted(set(store.calls) - {"outbox_purge"})

    renew = lease_s / 3
    assert chores_at(0) == ["inbox_expired", "inbox_purge", "inbox_renew"]
    checks = sorted([(renew - 0.01, "inbox_renew", False), (renew, "inbox_renew", True),
                     (recover_every - 0.01, "inbox_expired", False),
                     (recover_every, "inbox_expired", True),
                     (3599.99, "inbox_purge", False), (3600.0, "inbox_purge", True)])  # fmt: skip
    for t, chore, due in checks:  # in time order: each chore's period runs from its last run
        assert (chore in chores_at(t)) is due, (t, chore)
