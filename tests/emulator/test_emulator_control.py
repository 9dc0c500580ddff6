"""Fault injection, latency, statistics and the /_emulator/ control API via EmulatorControl."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from emulator_helpers import AGENT, START, WeComApi, text

from callback.devtools.emulator import (
    DEFAULT_CORP_ID,
    Emulator,
    EmulatorApp,
    EmulatorControl,
    EmulatorServer,
    SendContext,
    check_message,
)


@pytest.fixture
def control(emulator_server: EmulatorServer, emulator: Emulator) -> EmulatorControl:
    return EmulatorControl(emulator_server.url, timeout=5)


def test_errcode_faults_are_consumed_per_call(api: WeComApi, control: EmulatorControl) -> None:
    token = api.token()
    control.fail(2, errcode=-1, path="message/send")
    first = api.send(text(), token)
    assert first["errcode"] == -1 and first["errmsg"].startswith("system busy")
    assert api.gettoken()["errcode"] == 0
    assert api.send(text(), token)["errcode"] == -1
    assert api.send(text(), token)["errcode"] == 0
    assert len(control.messages()) == 1
    assert control.stats()["errcodes"]["message/send"] == {"-1": 2, "0": 1}


def test_http_status_faults(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.fail_next(1, http_status=502, path="/cgi-bin/message/send")
    url = f"{api.url}/cgi-bin/message/send"
    response = requests.post(url, params={"access_token": token}, json=text(), timeout=5)
    assert response.status_code == 502
    assert api.send(text(), token)["errcode"] == 0
    emulator.fail_next(1, errcode=45009, http_status=503)
    busy = requests.get(f"{api.url}/cgi-bin/gettoken", timeout=5)
    assert busy.status_code == 503 and busy.json()["errcode"] == 45009


def test_fault_without_path_hits_the_next_call_of_any_api(
    api: WeComApi, emulator: Emulator
) -> None:
    emulator.fail_next()
    assert api.gettoken()["errcode"] == -1
    assert api.gettoken()["errcode"] == 0


def test_latency(api: WeComApi, control: EmulatorControl) -> None:
    token = api.token()
    control.set_latency(200, path="message/send")
    started = time.monotonic()
    assert api.gettoken()["errcode"] == 0
    assert time.monotonic() - started < 0.15
    started = time.monotonic()
    assert api.send(text(), token)["errcode"] == 0
    assert time.monotonic() - started >= 0.2
    control.set_latency(0, path="message/send")
    started = time.monotonic()
    api.send(text(), token)
    assert time.monotonic() - started < 0.15


def test_control_client_round_trip(api: WeComApi, control: EmulatorControl) -> None:
    api.send(text(touser="alice|bob"))
    api.send(text(touser="carol"))
    assert [m["touser"] for m in control.messages(touser="Alice")] == [["alice", "bob"]]
    assert len(control.messages(msgtype="text")) == 2
    assert control.wait_for_messages(2, timeout=1)[0]["body"]["agentid"] == AGENT
    with pytest.raises(TimeoutError):
        control.wait_for_messages(3, timeout=0.1)
    stats = control.stats()
    assert stats["gettoken"] == {f"{DEFAULT_CORP_ID}/{AGENT}": 1}
    assert stats["calls"]["message/send"] == 2 and stats["messages"] == 2
    assert control.now() == START
    assert control.advance(10) == START + 10
    assert control.expire_tokens() == 1 and control.revoke_tokens() == 1
    control.add_app(EmulatorApp("ww_new", 7, "new-secret"))
    assert any(app["corp_id"] == "ww_new" for app in control.apps())
    assert control.updates() == []
    control.reset()
    assert control.messages() == [] and control.now() == START
    assert not any(app["corp_id"] == "ww_new" for app in control.apps())


def test_control_response_codes(api: WeComApi, control: EmulatorControl) -> None:
    msgid = api.send(text())["msgid"]
    with pytest.raises(requests.HTTPError):
        control.issue_response_code(msgid)


def test_control_rejects_bad_input(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    base = f"{emulator_server.url}/_emulator"
    assert (
        requests.post(f"{base}/clock/advance", json={"seconds": -1}, timeout=5).status_code == 400
    )
    assert requests.post(f"{base}/clock/advance", json=[1], timeout=5).status_code == 400
    assert requests.post(f"{base}/fail", json={"count": 0}, timeout=5).status_code == 400
    assert requests.post(f"{base}/fail", json={"errcode": "x"}, timeout=5).status_code == 400
    assert requests.post(f"{base}/apps", json={"secret": "s"}, timeout=5).status_code == 400
    duplicate = {"corp_id": DEFAULT_CORP_ID, "agent_id": AGENT, "secret": "x"}
    assert requests.post(f"{base}/apps", json=duplicate, timeout=5).status_code == 400
    assert requests.post(f"{base}/latency", json={"ms": "slow"}, timeout=5).status_code == 400


def test_unknown_api_path_is_404(api: WeComApi) -> None:
    response = requests.get(f"{api.url}/cgi-bin/user/get", timeout=5)
    assert response.status_code == 404 and response.json()["errcode"] == 40058


def test_concurrent_sends_are_all_recorded(api: WeComApi, emulator: Emulator) -> None:
    token, msgids = api.token(), []

    def worker() -> None:
        with requests.Session() as session:
            for _ in range(10):
                url = f"{api.url}/cgi-bin/message/send"
                answer = session.post(url, params={"access_token": token}, json=text(), timeout=5)
                msgids.append(answer.json()["msgid"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(msgids)) == 80 and len(emulator.messages()) == 80


def test_check_validates_without_http(emulator: Emulator) -> None:
    app = emulator.apps()[0]
    ctx = SendContext(app, frozenset(), lambda media_id: False)
    assert check_message(text(), ctx) == (0, "ok")
    assert check_message(text(""), ctx)[0] == 44004


def test_hostile_input_never_gives_a_500(api: WeComApi, emulator_server: EmulatorServer) -> None:
    deep = '{"touser": "a", "msgtype": "text", "x": ' + "[" * 500 + "]" * 500 + "}"
    assert api.send(deep.encode())["errcode"] == 40058
    deeper = "[" * 100_000 + "]" * 100_000
    assert api.send(deeper.encode())["errcode"] == 40058
    base = f"{emulator_server.url}/_emulator"
    for path, body in [("latency", '{"ms": NaN}'), ("fail", '{"count": Infinity}')]:
        response = requests.post(f"{base}/{path}", data=body, timeout=5)
        assert response.status_code == 400, response.text
    nested = requests.post(f"{base}/clock/advance", data="[" * 100_000, timeout=5)
    assert nested.status_code == 400
