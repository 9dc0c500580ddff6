"""Faults that only hit calls whose JSON body matches a CallMatch (Python and control API)."""

from __future__ import annotations

import pytest
import requests
from emulator_helpers import AGENT, WeComApi, text

from callback.devtools.emulator import CallMatch, Emulator, EmulatorControl, EmulatorServer


@pytest.fixture
def control(emulator_server: EmulatorServer, emulator: Emulator) -> EmulatorControl:
    return EmulatorControl(emulator_server.url, timeout=5)


def test_match_on_enable_duplicate_check(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.fail_next(2, path="message/send", match=CallMatch(enable_duplicate_check=1))
    assert api.send(text("a"), token)["errcode"] == 0
    assert api.send(text("b", enable_duplicate_check=0), token)["errcode"] == 0
    assert api.send(text("c", enable_duplicate_check=1), token)["errcode"] == -1
    assert api.send(text("d", enable_duplicate_check=1), token)["errcode"] == -1
    assert api.send(text("e", enable_duplicate_check=1), token)["errcode"] == 0
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["a", "b", "e"]


def test_match_on_no_duplicate_check_counts_an_absent_flag_as_0(
    api: WeComApi, emulator: Emulator
) -> None:
    token = api.token()
    emulator.fail_next(2, errcode=45009, match=CallMatch(enable_duplicate_check=0))
    assert api.send(text(enable_duplicate_check=1), token)["errcode"] == 0
    assert api.send(text(), token)["errcode"] == 45009
    assert api.send(text(enable_duplicate_check=0), token)["errcode"] == 45009
    assert api.send(text(), token)["errcode"] == 0


def test_match_on_touser_over_the_control_api(api: WeComApi, control: EmulatorControl) -> None:
    token = api.token()
    control.fail(1, errcode=45009, path="/cgi-bin/message/send", match={"touser": "Alice"})
    assert api.send(text(touser="bob"), token)["errcode"] == 0
    assert api.send(text(touser="alicia|bob"), token)["errcode"] == 0
    assert api.send(text(touser="carol|ALICE"), token)["errcode"] == 45009
    assert api.send(text(touser="alice"), token)["errcode"] == 0
    assert control.stats()["errcodes"]["message/send"] == {"0": 3, "45009": 1}


def test_match_on_msgtype_and_fields(api: WeComApi, control: EmulatorControl) -> None:
    token = api.token()
    match = CallMatch(msgtype="text", fields={"agentid": AGENT, "safe": 1})
    control.fail(1, errcode=-1, match=match)
    assert api.send(text(safe=0), token)["errcode"] == 0
    assert api.send(text(), token)["errcode"] == 0  # safe absent: no match
    markdown = {"touser": "a", "msgtype": "markdown", "agentid": AGENT, "safe": 1}
    markdown["markdown"] = {"content": "# hi"}
    assert api.send(markdown, token)["errcode"] != -1
    assert api.send(text(safe=True), token)["errcode"] == 40058  # true is not the JSON value 1
    assert api.send(text(safe=1), token)["errcode"] == -1


def test_a_match_skips_calls_without_a_json_body(api: WeComApi, emulator: Emulator) -> None:
    emulator.fail_next(1, errcode=-1, match=CallMatch(touser="zhangsan"))
    assert api.gettoken()["errcode"] == 0
    assert api.send(b"not json")["errcode"] == 40058
    assert api.send(b'["a list"]')["errcode"] == 40058
    assert api.send(text())["errcode"] == -1


def test_faults_without_a_match_keep_their_order(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.fail_next(1, errcode=45009, path="message/send", match=CallMatch(touser="bob"))
    emulator.fail_next(1, errcode=-1, path="message/send")
    assert api.send(text(touser="alice"), token)["errcode"] == -1
    assert api.send(text(touser="bob"), token)["errcode"] == 45009
    assert api.send(text(touser="bob"), token)["errcode"] == 0


def test_bad_match_is_rejected(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    url = f"{emulator_server.url}/_emulator/fail"
    for match in (
        [1],
        {"to": "alice"},
        {"enable_duplicate_check": 2},
        {"enable_duplicate_check": True},
        {"touser": 5},
        {"touser": ""},
        {"fields": [1]},
    ):
        response = requests.post(url, json={"match": match}, timeout=5)
        assert response.status_code == 400, match
    with pytest.raises(ValueError):
        CallMatch(enable_duplicate_check=3)
    assert CallMatch(touser="a", fields={"x": [1]}).to_json() == {
        "touser": "a",
        "fields": {"x": [1]},
    }
    assert CallMatch.from_json({"msgtype": "text"}) == CallMatch(msgtype="text")
