"""The outbox on its own: a real MemoryStore on a test clock and a real client sending to the
WeCom emulator over HTTP. What counts is what WeCom was sent, what the store keeps about each
item (state, attempts, error: what `wecom outbox list` shows) and what ctx.send returns."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from callback.delivery.outbox import CHECK_MARGIN_S, SEND, Outbox, OutboxPolicy
from callback.devtools.emulator import Emulator, EmulatorServer
from callback.devtools.emulator.faults import CallMatch
from callback.errors import ApiError, WecomError
from callback.outbound import Text
from callback.outbound.client import RetryPolicy, SendResult, WecomClient
from callback.store import MemoryStore
from callback.store.records import DEAD, DONE, PENDING
from tests.conftest import emulator_settings, free_port

USER = "zhangsan"
LONG = "长" * 1000  # 3000 bytes: two messages


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(url: str, clock: Clock, policy: OutboxPolicy = OutboxPolicy()) -> Outbox:
    """An outbox whose client tries each request once and gives up on an answer after 0.3 s."""
    store = MemoryStore(clock)
    client = WecomClient(
        emulator_settings(url).apps, store, retry=RetryPolicy(attempts=1), timeout=(1.0, 0.3)
    )
    return Outbox(store, client, owner=lambda: "test", clock=clock, policy=policy)


@pytest.fixture
def outbox(emulator_server: EmulatorServer, emulator: Emulator, clock: Clock) -> Outbox:
    return make(emulator_server.url, clock)


def texts(emulator: Emulator) -> list[str]:
    return [m.body["text"]["content"] for m in emulator.messages()]


# -- ctx.send: what the handler gets back --------------------------------------------------------


def test_send_returns_wecoms_msgid_for_every_part_of_a_long_text(
    outbox: Outbox, emulator: Emulator
) -> None:
    result = outbox.send("cb:send:0", "hr", Text(LONG), [USER])
    sent = emulator.messages()
    assert len(sent) == 2 and "".join(texts(emulator)) == LONG
    assert result == SendResult(msgid=sent[0].msgid, msgids=(sent[0].msgid, sent[1].msgid))


def test_send_options_reach_wecom(outbox: Outbox, emulator: Emulator) -> None:
    outbox.send("cb:send:0", "hr", Text("secret"), [USER], safe=1, duplicate_check_interval=600)
    (sent,) = emulator.messages()
    assert sent.body["safe"] == 1 and sent.body["duplicate_check_interval"] == 600


def test_a_rerun_send_returns_the_first_result_and_sends_nothing(
    outbox: Outbox, emulator: Emulator
) -> None:
    first = outbox.send("cb:send:0", "hr", Text("once"), [USER])
    again = outbox.send("cb:send:0", "hr", Text("once"), [USER])  # the handler re-ran
    assert again == first and first.msgid and texts(emulator) == ["once"]


def test_a_send_that_must_be_retried_returns_queued(outbox: Outbox, emulator: Emulator) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    emulator.fail_next(1, errcode=45009, path="message/send")  # WeCom busy
    result = outbox.send("cb:send:0", "hr", Text("later"), [USER])
    assert result == SendResult(msgid="", queued=True)
    assert result.queued is True and result.msgid == ""
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == PENDING and item.attempts == 1


def test_a_send_wecom_refuses_raises_wecoms_error(outbox: Outbox, emulator: Emulator) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    emulator.fail_next(1, errcode=40003, path="message/send")  # invalid user: never retried
    with pytest.raises(ApiError) as refused:
        outbox.send("cb:send:0", "hr", Text("to nobody"), [USER])
    assert refused.value.errcode == 40003
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == DEAD and item.attempts == 1
    assert "errcode 40003" in item.error
    with pytest.raises(WecomError) as rerun:  # the handler re-ran: the same failure, stored
        outbox.send("cb:send:0", "hr", Text("to nobody"), [USER])
    assert str(rerun.value) == f"send cb:send:0 failed: {item.error}"


def test_a_long_text_whose_second_part_is_refused_raises(
    outbox: Outbox, emulator: Emulator
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    second = outbox.client.bodies("hr", Text(LONG), [USER])[1]
    emulator.fail_next(1, errcode=40003, match=CallMatch(fields={"text": second["text"]}))
    with pytest.raises(ApiError):
        outbox.send("cb:send:0", "hr", Text(LONG), [USER])
    item = outbox.store.outbox_get("cb:send:0")
    assert item is not None and item.state == DEAD and item.parts_done == 1
    assert len(texts(emulator)) == 2  # the warm-up and the first part


# -- the backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("draw", "share"), [("low", 0.5), ("high", 1.0)])
def test_the_backoff_doubles_per_attempt_jittered_down_to_half_and_capped(
    monkeypatch: pytest.MonkeyPatch, draw: str, share: float
) -> None:
    monkeypatch.setattr(random, "uniform", lambda a, b: a if draw == "low" else b)
    policy = OutboxPolicy(base_s=1.0, cap_s=300.0)
    assert [policy.delay(n) for n in (0, 1, 3)] == [share * 1, share * 2, share * 8]
    assert policy.delay(9) == share * 300  # 512 s, capped
    assert policy.delay(10_000) == share * 300  # no overflow however many attempts


# -- which failures are tried again --------------------------------------------------------------


def attempt_at(outbox: Outbox, clock: Clock, item_id: str, age_s: float) -> Any:
    """Attempt `item_id` (added now) `age_s` seconds after it was created; the stored item."""
    clock.now += age_s
    outbox.deliver(item_id)
    return outbox.store.outbox_get(item_id)


def add_text(outbox: Outbox, item_id: str, text: str, **options: Any) -> None:
    outbox.add(item_id, "hr", SEND, outbox.client.bodies("hr", Text(text), [USER], **options))


@pytest.mark.parametrize(("age", "state"), [(24 * 3600.0, PENDING), (24 * 3600.0 + 1, DEAD)])
def test_a_busy_wecom_is_retried_until_the_item_is_a_day_old(
    outbox: Outbox, emulator: Emulator, clock: Clock, age: float, state: str
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    add_text(outbox, "item", "busy")
    emulator.fail_next(1, errcode=-1, path="message/send")
    item = attempt_at(outbox, clock, "item", age)
    assert item.state == state and item.attempts == 1 and "errcode -1" in item.error


def test_no_connection_to_wecom_is_retried(emulator_server: EmulatorServer, clock: Clock) -> None:
    outbox = make(f"http://127.0.0.1:{free_port()}", clock)  # nothing listens there
    outbox.add("item", "hr", SEND, ({"touser": USER, "msgtype": "text"},))
    item = attempt_at(outbox, clock, "item", 0)
    assert item.state == PENDING and item.attempts == 1 and "no connection" in item.error
    assert item.next_at > clock.now


@pytest.mark.parametrize(
    ("age", "state"), [(600 - CHECK_MARGIN_S - 1, PENDING), (600 - CHECK_MARGIN_S, DEAD)]
)
def test_no_answer_is_retried_only_well_inside_the_bodys_duplicate_check_interval(
    outbox: Outbox, emulator: Emulator, clock: Clock, age: float, state: str
) -> None:
    outbox.send("warm", "hr", Text("token first"), [USER])
    add_text(outbox, "item", "maybe delivered", duplicate_check_interval=600)
    emulator.no_answer_next(1, deliver=True, path="message/send")
    item = attempt_at(outbox, clock, "item", age)
    assert item.state == state and item.attempts == 1
    assert ("wecom outbox retry item" in item.error) == (state == DEAD)
