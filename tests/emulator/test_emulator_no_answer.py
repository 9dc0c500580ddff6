"""No-answer faults: calls delivered then left unanswered, or lost; connections held, released."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from emulator_helpers import START, WeComApi, text, wait_held

from callback.devtools.emulator import (
    CallMatch,
    Emulator,
    EmulatorControl,
    EmulatorServer,
    HoldEnd,
    UnansweredCall,
)


def post_send(
    url: str, token: str, body: dict[str, Any], timeout: tuple[float, float] = (1, 1)
) -> requests.Response:
    return requests.post(
        f"{url}/cgi-bin/message/send", params={"access_token": token}, json=body, timeout=timeout
    )


def ended(emulator: Emulator, index: int = -1, timeout: float = 5.0) -> UnansweredCall:
    """The unanswered call once its connection was closed."""
    deadline = time.monotonic() + timeout
    while (call := emulator.unanswered()[index]).ended is None:
        assert time.monotonic() < deadline, "the connection is still held"
        time.sleep(0.01)
    return call


def test_delivered_then_no_answer(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True, path="message/send")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, text("hello", touser="alice"))
    assert time.monotonic() - started < 3
    [message] = emulator.messages(touser="alice")
    assert message.body["text"]["content"] == "hello" and not message.answered
    call = ended(emulator)
    assert call.ended == HoldEnd.CLIENT_CLOSED == "client_closed"
    assert call.deliver and call.path == "message/send" and call.errcode == 0
    assert call.withheld is not None and call.withheld["msgid"] == message.msgid
    assert call.body == text("hello", touser="alice") and call.received_at == START
    stats = emulator.stats()
    assert stats.delivered_unanswered == 1 and stats.messages == 1
    assert stats.unanswered == {"message/send": 1} and stats.lost == {}
    assert "message/send" not in stats.errcodes  # the errcode was never answered
    assert stats.calls["message/send"] == 1 and stats.held == 0


def test_lost_before_delivery(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=False, path="message/send")
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, text("hello", touser="alice"))
    assert emulator.messages() == []
    call = ended(emulator)
    assert not call.deliver and call.errcode is None and call.withheld is None
    assert call.body == text("hello", touser="alice") and call.ended == "client_closed"
    stats = emulator.stats()
    assert stats.delivered_unanswered == 0 and stats.messages == 0
    assert stats.unanswered == {"message/send": 1} == stats.lost
    assert api.send(text("again", touser="alice"), token)["errcode"] == 0
    assert [m.answered for m in emulator.messages()] == [True]


def test_only_the_next_n_calls_go_unanswered(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(2, deliver=True, path="/cgi-bin/message/send")
    for content in ("one", "two"):
        with pytest.raises(requests.ReadTimeout):
            post_send(api.url, token, text(content), timeout=(1, 0.3))
    assert api.gettoken()["errcode"] == 0
    answer = api.send(text("three"), token)
    assert answer["errcode"] == 0
    assert [(m.body["text"]["content"], m.answered) for m in emulator.messages()] == [
        ("one", False),
        ("two", False),
        ("three", True),
    ]
    assert emulator.stats().delivered_unanswered == 2
    assert len(emulator.unanswered(path="message/send")) == 2
    assert emulator.unanswered(path="gettoken") == []


def test_no_answer_targets_matching_calls(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True, match=CallMatch(enable_duplicate_check=0))
    assert api.send(text("checked", enable_duplicate_check=1), token)["errcode"] == 0
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, text("unchecked"), timeout=(1, 0.3))
    assert api.send(text("later"), token)["errcode"] == 0
    unanswered = [m.body["text"]["content"] for m in emulator.messages() if not m.answered]
    assert unanswered == ["unchecked"]


def test_max_seconds_closes_the_connection_without_a_response(
    api: WeComApi, emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True, path="message/send", max_seconds=0.3)
    body = json.dumps(text()).encode()
    head = f"POST /cgi-bin/message/send?access_token={token} HTTP/1.1\r\nHost: emulator\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    address = (emulator_server.host, emulator_server.port)
    with socket.create_connection(address, timeout=5) as client:
        started = time.monotonic()
        client.sendall(head.encode() + body)
        assert client.recv(1024) == b""  # closed: not one byte of a status line
        assert 0.3 <= time.monotonic() - started < 2
    assert ended(emulator).ended == HoldEnd.ELAPSED
    assert len(emulator.messages()) == 1


def test_requests_sees_the_close_as_a_dropped_connection(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=False, max_seconds=0.2)
    with pytest.raises(requests.ConnectionError) as raised:
        post_send(api.url, token, text(), timeout=(1, 5))
    assert not isinstance(raised.value, requests.ReadTimeout)
    assert emulator.messages() == []


def test_a_held_call_blocks_no_other_request(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(2, deliver=True, path="message/send")
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(post_send, api.url, token, text(c), (1, 30)) for c in "ab"]
        wait_held(emulator, 2)
        started = time.monotonic()
        assert api.gettoken()["errcode"] == 0
        assert api.send(text("c"), token)["errcode"] == 0
        assert time.monotonic() - started < 2
        assert emulator.stats().held == 2
        started = time.monotonic()
        assert emulator.release_held() == 2
        for future in held:
            with pytest.raises(requests.ConnectionError):
                future.result(timeout=2)
        assert time.monotonic() - started < 2
    assert [call.ended for call in emulator.unanswered()] == ["released", "released"]
    assert emulator.stats().delivered_unanswered == 2 and emulator.stats().held == 0


def test_reset_releases_held_connections(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(post_send, api.url, token, text(), (1, 30))
        wait_held(emulator, 1)
        started = time.monotonic()
        emulator.reset()
        with pytest.raises(requests.ConnectionError):
            held.result(timeout=2)
        assert time.monotonic() - started < 2
    wait_held(emulator, 0)
    assert emulator.unanswered() == [] and emulator.stats().unanswered == {}


def test_server_stop_ends_held_connections_at_once_and_leaks_no_thread() -> None:
    baseline = threading.active_count()
    server = EmulatorServer(Emulator()).start()
    token = requests.get(
        f"{server.url}/cgi-bin/gettoken",
        params={"corpid": "ww_emulator_corp", "corpsecret": "emulator-secret"},
        timeout=5,
    ).json()["access_token"]
    server.emulator.no_answer_next(1, deliver=True, match=CallMatch(touser="held"))
    server.emulator.no_answer_next(1, deliver=False, match=CallMatch(touser="lost"))
    server.emulator.late_answer_next(1, ms=60_000, match=CallMatch(touser="late"))
    with ThreadPoolExecutor(3) as pool:
        futures = {
            who: pool.submit(post_send, server.url, token, text(touser=who), (1, 60))
            for who in ("held", "lost", "late")
        }
        wait_held(server.emulator, 3)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        assert server.emulator.stats().held == 0
        for who in ("held", "lost"):
            with pytest.raises(requests.ConnectionError):
                futures[who].result(timeout=2)
        assert futures["late"].result(timeout=2).json()["errcode"] == 0
    deadline = time.monotonic() + 2
    while threading.active_count() > baseline:
        assert time.monotonic() < deadline, threading.enumerate()
        time.sleep(0.01)


def test_deliver_handles_the_call_fully(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    for _ in range(30):
        api.send(text(touser="alice"), token)
    emulator.no_answer_next(3, deliver=True, max_seconds=0.2)
    with pytest.raises(requests.ConnectionError):
        post_send(api.url, token, text(touser="alice"), timeout=(1, 5))  # over 30/min
    last = emulator.messages()[-1]
    assert not last.answered and last.dropped == ("alice",) and not last.delivered
    with pytest.raises(requests.ConnectionError):
        post_send(api.url, token, text(""), timeout=(1, 5))  # rejected: 44004
    msgid = emulator.messages()[0].msgid
    url = f"{api.url}/cgi-bin/message/recall"
    with pytest.raises(requests.ConnectionError):
        requests.post(url, params={"access_token": token}, json={"msgid": msgid}, timeout=5)
    assert [call.errcode for call in emulator.unanswered()] == [0, 44004, 0]
    assert emulator.messages()[0].recalled
    assert api.post("message/recall", {"msgid": msgid}, token)["errcode"] == 40058
    stats = emulator.stats()
    assert stats.delivered_unanswered == 0 and stats.dropped == 1
    assert stats.unanswered == {"message/send": 2, "message/recall": 1}


def test_no_answer_over_the_control_api(
    api: WeComApi, emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    control = EmulatorControl(emulator_server.url, timeout=5)
    token = api.token()
    control.no_answer(1, deliver=True, path="message/send", match={"touser": "bob"})
    control.no_answer(1, deliver=False, match=CallMatch(touser="dave"), max_seconds=0.2)
    assert api.send(text(touser="alice|carol"), token)["errcode"] == 0
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, text(touser="alice|bob"), timeout=(1, 0.3))
    with pytest.raises(requests.ConnectionError):
        post_send(api.url, token, text(touser="dave"), timeout=(1, 5))
    calls = control.unanswered(path="message/send")
    assert [(c["deliver"], c["body"]["touser"]) for c in calls] == [
        (True, "alice|bob"),
        (False, "dave"),
    ]
    assert calls[1]["ended"] == "elapsed" and calls[1]["withheld"] is None
    [message] = control.messages(touser="bob")
    assert message["answered"] is False and calls[0]["withheld"]["msgid"] == message["msgid"]
    stats = control.stats()
    assert stats["delivered_unanswered"] == 1
    assert stats["unanswered"] == {"message/send": 2} and stats["lost"] == {"message/send": 1}
    assert control.release_held() == 0


def test_no_answer_rejects_bad_input(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    url = f"{emulator_server.url}/_emulator/no_answer"
    for bad in (
        {},
        {"deliver": 1},
        {"deliver": "yes"},
        {"deliver": True, "max_seconds": 0},
        {"deliver": True, "max_seconds": -1},
        {"deliver": True, "max_seconds": 3601},
        {"deliver": True, "count": 0},
        {"deliver": True, "match": {"who": "x"}},
    ):
        assert requests.post(url, json=bad, timeout=5).status_code == 400, bad
    nan = requests.post(url, data='{"deliver": true, "max_seconds": NaN}', timeout=5)
    assert nan.status_code == 400
    with pytest.raises(ValueError):
        emulator.no_answer_next(1, deliver=True, max_seconds=float("inf"))
