"""Late answers: the next N calls are handled at once and answered after a delay."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from emulator_helpers import WeComApi, text, wait_held

from callback.devtools.emulator import CallMatch, Emulator, EmulatorControl, EmulatorServer


def post_send(
    api: WeComApi, token: str, body: dict[str, Any], timeout: tuple[float, float]
) -> requests.Response:
    url = f"{api.url}/cgi-bin/message/send"
    return requests.post(url, params={"access_token": token}, json=body, timeout=timeout)


def test_late_answer_delivers_first_and_answers_later(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.late_answer_next(1, ms=1000, path="message/send")
    with pytest.raises(requests.ReadTimeout):
        post_send(api, token, text("early"), timeout=(1, 0.1))
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["early"]
    assert emulator.stats().late == {"message/send": 1}
    started = time.monotonic()
    assert api.send(text("next"), token)["errcode"] == 0  # the fault was for one call only
    assert time.monotonic() - started < 0.8


def test_a_patient_client_gets_the_late_answer(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.late_answer_next(2, ms=500, path="message/send")
    for content in ("one", "two"):
        started = time.monotonic()
        answer = api.send(text(content), token)
        assert answer["errcode"] == 0 and time.monotonic() - started >= 0.5
        assert emulator.messages()[-1].msgid == answer["msgid"]
    started = time.monotonic()
    api.send(text("three"), token)
    assert time.monotonic() - started < 0.4
    assert emulator.stats().errcodes["message/send"] == {0: 3}


def test_late_answer_targets_matching_calls(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.late_answer_next(1, ms=800, match=CallMatch(touser="bob"))
    started = time.monotonic()
    api.gettoken()
    api.send(text(touser="alice"), token)
    assert time.monotonic() - started < 0.6
    started = time.monotonic()
    api.send(text(touser="bob"), token)
    assert time.monotonic() - started >= 0.8
    assert emulator.stats().late == {"message/send": 1}


def test_a_late_answer_blocks_no_other_request(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.late_answer_next(1, ms=30_000, path="message/send")
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(api.send, text("slow"), token)
        wait_held(emulator, 1)
        started = time.monotonic()
        assert api.gettoken()["errcode"] == 0
        assert api.send(text("quick"), token)["errcode"] == 0
        assert time.monotonic() - started < 2
        assert emulator.release_held() == 1
        assert late.result(timeout=2)["errcode"] == 0
    wait_held(emulator, 0)


def test_reset_sends_late_answers_now(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.late_answer_next(1, ms=30_000)
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(api.send, text(), token)
        wait_held(emulator, 1)
        started = time.monotonic()
        emulator.reset()
        assert late.result(timeout=2)["errcode"] == 0
        assert time.monotonic() - started < 2
    assert emulator.stats().late == {}


def test_late_answer_over_the_control_api(
    api: WeComApi, emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    control = EmulatorControl(emulator_server.url, timeout=5)
    token = api.token()
    control.late_answer(1, ms=30_000, path="message/send", match={"enable_duplicate_check": 1})
    api.send(text(), token)
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(api.send, text(enable_duplicate_check=1), token)
        wait_held(emulator, 1)
        assert control.stats()["held"] == 1
        assert control.release_held() == 1
        assert late.result(timeout=2)["errcode"] == 0
    assert control.stats()["late"] == {"message/send": 1}
    base = f"{emulator_server.url}/_emulator/late_answer"
    for bad in ({}, {"ms": -1}, {"ms": 0}, {"ms": 3_600_001}, {"ms": 5, "count": 0}):
        assert requests.post(base, json=bad, timeout=5).status_code == 400, bad
    assert requests.post(base, data='{"ms": NaN}', timeout=5).status_code == 400
