"""The long connection's lifecycle (§3.1-§3.4, §3.9, §8.2): subscribe, heartbeat, idle close,
eviction, ack order and the ack faults, against a stand-in client over 127.0.0.1."""

from __future__ import annotations

import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from ws_helpers import BOT, USER, Dev, markdown

from callback.devtools.emulator import (
    AibotConnectionServer,
    Emulator,
    EmulatorControl,
    EmulatorServer,
    NotConnected,
    WsKnobs,
)


def closed_within(dev: Dev, seconds: float) -> ConnectionClosed:
    """Read until the server closes the socket; fail if that takes longer than seconds."""
    deadline = time.monotonic() + seconds
    with pytest.raises(ConnectionClosed) as info:
        while True:
            dev.recv(timeout=max(0.01, deadline - time.monotonic()))
    return info.value


def test_subscribe_then_callbacks_come_with_server_req_ids(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    with pytest.raises(NotConnected):
        ws.send_message(BOT, ws.callbacks().text("too early"))
    assert dev.subscribe() == {"headers": {"req_id": dev_last(ws)}, "errcode": 0, "errmsg": "ok"}
    active = ws.hub.active_connection(BOT)
    assert active is not None and active.bot_id == BOT
    req_ids = [ws.send_message(BOT, ws.callbacks().text(f"m{i}")) for i in range(2)]
    frames = [dev.callback(), dev.callback()]
    assert [f["cmd"] for f in frames] == ["aibot_msg_callback"] * 2
    assert [f["headers"]["req_id"] for f in frames] == req_ids
    assert len(set(req_ids)) == 2 and all(len(r) >= 16 for r in req_ids)
    body = frames[0]["body"]
    assert (body["aibotid"], body["chattype"], body["from"]) == (BOT, "single", {"userid": USER})
    assert body["text"] == {"content": "m0"} and len(body["msgid"]) == 32
    assert [c.kind for c in ws.hub.callbacks()] == ["message", "message"]


def dev_last(ws: AibotConnectionServer) -> str:
    """The req_id of the last frame the server received."""
    frame = [f for f in ws.hub.frames() if f.direction == "in"][-1].frame
    assert not isinstance(frame, str)
    return str(frame["headers"]["req_id"])


def test_bad_credentials_get_853000_and_the_socket_stays_open(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    wrong = dev.subscribe(secret="wrong")
    assert wrong["errcode"] == 853000 and wrong["errmsg"] == "invalid bot_id or secret"
    assert dev.subscribe(bot_id="aibUNKNOWN")["errcode"] == 853000
    assert ws.hub.active_connection(BOT) is None
    assert dev.code("aibot_send_msg", {"chatid": USER, **markdown()}) == 853000
    assert dev.code("ping") == 0
    time.sleep(0.2)
    assert dev.subscribe()["errcode"] == 0
    assert dev.code("aibot_send_msg", {"chatid": USER, **markdown()}) == 0
    assert [c.close_reason for c in ws.hub.connections()] == [None]


def test_ping_is_acked_with_its_req_id(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    dev.subscribe()
    rid = dev.send("ping", req_id="ping_1765000030000_0c1d2e3f")
    assert dev.recv() == {
        "headers": {"req_id": "ping_1765000030000_0c1d2e3f"},
        "errcode": 0,
        "errmsg": "ok",
    }
    assert rid == "ping_1765000030000_0c1d2e3f"


def test_a_silent_connection_is_closed_after_idle_timeout(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(idle_timeout_s=0.4)
    talker, silent = Dev(ws.url), Dev(ws.url)
    ws.hub.add_bot("aibOTHER", "other-secret")
    talker.subscribe()
    silent.subscribe("aibOTHER", "other-secret")
    started = time.monotonic()
    for _ in range(6):
        time.sleep(0.15)
        assert talker.code("ping") == 0  # pinging keeps it open past 0.4 s
    closed_within(silent, 3.0)
    assert time.monotonic() - started < 4.0
    talker_record, silent_record = ws.hub.connections()
    assert silent_record.close_reason == "idle" and silent_record.closed_at is not None
    assert talker_record.open
    closed_within(talker, 3.0)
    assert ws.hub.wait_closed(talker_record.conn_id).close_reason == "idle"


def test_a_second_subscriber_evicts_the_first(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(evict_delay_s=0.4)
    old = Dev(ws.url)
    old.subscribe()
    new = Dev(ws.url)
    assert new.subscribe()["errcode"] == 0
    event = old.callback()
    told = time.monotonic()
    assert event["cmd"] == "aibot_event_callback"
    assert event["body"]["event"] == {"eventtype": "disconnected_event"}
    assert event["body"]["aibotid"] == BOT and event["body"]["msgtype"] == "event"
    assert old.code("ping") == 0  # the old socket works until it is closed
    req_id = ws.send_message(BOT, ws.callbacks().text("to the newest"))
    assert new.callback()["headers"]["req_id"] == req_id
    error = closed_within(old, 2.0)
    assert isinstance(error, ConnectionClosedError) and error.rcvd is None  # abrupt, no frame
    assert time.monotonic() - told >= 0.3
    first, second = ws.hub.connections()
    (eviction,) = ws.hub.evictions()
    assert (eviction.bot_id, eviction.evicted, eviction.by) == (BOT, first.conn_id, second.conn_id)
    assert eviction.req_id == event["headers"]["req_id"]
    assert ws.hub.wait_closed(first.conn_id).close_reason == "evicted"
    assert [c.kind for c in ws.hub.callbacks()] == ["disconnected_event", "message"]
    time.sleep(0.5)
    assert len(ws.hub.evictions()) == 1  # no ping-pong: the newer connection stays
    active = ws.hub.active_connection(BOT)
    assert new.code("ping") == 0 and active is not None and active.conn_id == second.conn_id


def test_eviction_can_close_with_a_close_frame(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(evict_delay_s=0.1, evict_close="close_frame")
    old = Dev(ws.url)
    old.subscribe()
    Dev(ws.url).subscribe()
    assert old.callback()["body"]["event"]["eventtype"] == "disconnected_event"
    error = closed_within(old, 2.0)
    assert isinstance(error, ConnectionClosedOK) and error.rcvd is not None
    assert error.rcvd.code == 1000


def test_acks_come_in_arrival_order_even_when_delayed(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    dev.subscribe()
    ws.hub.delay_acks(1, ms=300, cmd="ping")
    started = time.monotonic()
    sent = [
        dev.send("ping"),
        dev.send("aibot_respond_msg", markdown(), req_id="unknown-req"),
        dev.send("aibot_send_msg", {"chatid": USER, **markdown()}),
        dev.send("ping"),
    ]
    acks = [dev.recv() for _ in sent]
    assert time.monotonic() - started >= 0.3
    assert [a["headers"]["req_id"] for a in acks] == sent
    assert [a["errcode"] for a in acks] == [0, 846605, 0, 0]


def test_a_dropped_ack_never_comes(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    dev.subscribe()
    ws.hub.drop_acks(1, cmd="ping")
    dev.send("ping", req_id="lost")
    with pytest.raises(TimeoutError):
        dev.recv(timeout=0.3)
    assert dev.code("ping") == 0
    assert [f.direction for f in ws.hub.frames() if f.direction != "in"][-2:] == ["dropped", "out"]


def test_injected_errors_answer_frames_without_handling_them(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    dev.subscribe()
    ws.hub.fail_frames(1, errcode=846607, cmd="aibot_send_msg")
    assert dev.code("aibot_send_msg", {"chatid": USER, **markdown("lost")}) == 846607
    assert dev.code("aibot_send_msg", {"chatid": USER, **markdown("kept")}) == 0
    pushes = ws.hub.conversation(BOT, USER).pushes
    assert [p.body["markdown"]["content"] for p in pushes] == ["kept"]


def test_drop_connection_cuts_the_socket(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    dev.subscribe()
    assert ws.hub.drop_connection(BOT)
    assert isinstance(closed_within(dev, 2.0), ConnectionClosedError)
    (record,) = ws.hub.connections()
    assert ws.hub.wait_closed(record.conn_id).close_reason == "dropped"
    with pytest.raises(NotConnected):
        ws.send_message(BOT, ws.callbacks().text("nobody listens"))
    assert not ws.hub.drop_connection(BOT)


def test_reset_closes_connections_and_clears_records(ws: AibotConnectionServer) -> None:
    dev = Dev(ws.url)
    dev.subscribe()
    dev.code("aibot_send_msg", {"chatid": USER, **markdown()})
    ws.hub.set_knobs(per_minute=1)
    ws.emulator.reset()
    closed_within(dev, 2.0)
    assert ws.hub.connections() == [] and ws.hub.conversations() == []
    assert ws.hub.knobs().per_minute == 30


def test_control_api_drives_and_reads_the_long_connection(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(evict_delay_s=0.1)
    with EmulatorServer(ws.emulator) as http:
        control = EmulatorControl(http.url)
        with pytest.raises(requests.HTTPError) as refused:
            control.ws_send_message(BOT, ws.callbacks().text("nobody"))
        assert refused.value.response.status_code == 409
        control.ws_add_bot("aibSECOND", "second-secret")
        assert {"bot_id": "aibSECOND", "secret": "second-secret"} in control.ws_bots()
        assert control.ws_set_knobs(per_minute=5)["per_minute"] == 5
        old, new = Dev(ws.url), Dev(ws.url)
        old.subscribe()
        new.subscribe()
        req_id = control.ws_send_message(BOT, ws.callbacks().text("via control"))
        assert new.callback()["headers"]["req_id"] == req_id
        assert new.reply(req_id, markdown("answer")) == 0
        first, second = (c["conn_id"] for c in control.ws_connections(BOT))
        (eviction,) = control.ws_evictions(BOT)
        assert (eviction["evicted"], eviction["by"]) == (first, second)
        (conversation,) = control.ws_conversations(BOT, USER)
        assert [i["body"] for i in conversation["items"]] == [markdown("answer")]
        assert control.ws_callbacks(BOT)[-1]["req_id"] == req_id
        control.ws_fault("error", cmd="ping", errcode=-1)
        assert new.code("ping") == -1
        assert control.ws_refusals(BOT)[-1]["cmd"] == "ping"
        assert control.ws_frames()[-1]["frame"]["errcode"] == -1
        assert control.ws_drop_connection(BOT) is True


def test_stopping_the_server_closes_its_connections() -> None:
    emulator = Emulator()
    server = AibotConnectionServer(emulator, knobs=WsKnobs(idle_timeout_s=30)).start()
    dev = Dev(server.url)
    dev.subscribe()
    emulator.aibot_ws.delay_acks(1, ms=60_000, cmd="ping")
    dev.send("ping")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5  # a pending ack delay does not hold the stop up
    error = closed_within(dev, 2.0)
    assert error.rcvd is not None and error.rcvd.code == 1001
    (record,) = emulator.aibot_ws.connections()
    assert record.close_reason == "server_stop" and not record.open
