"""enable_duplicate_check: what counts as identical, how a suppressed repeat is answered and
recorded, and how it tells a swallowed re-send from a member seeing a message twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from emulator_helpers import START, WeComApi, text

from callback.devtools.emulator import (
    DuplicateRecord,
    Emulator,
    EmulatorControl,
    EmulatorServer,
)


def checked(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return text(content, **{"touser": "alice", "enable_duplicate_check": 1, **extra})


def post_send(url: str, token: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{url}/cgi-bin/message/send", params={"access_token": token}, json=body, timeout=(1, 0.3)
    )


def test_a_suppressed_repeat_is_recorded_not_delivered(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    first = api.send(checked(), token)
    emulator.advance(5)
    second = api.send(checked(), token)
    assert second == first  # the default answer: the first call's, same msgid
    [message] = emulator.messages(touser="alice")
    assert message.msgid == first["msgid"]
    app = emulator.apps()[0]
    assert emulator.duplicates() == [
        DuplicateRecord(first["msgid"], app.corp_id, app.agent_id, checked(), START + 5)
    ]
    assert emulator.stats().duplicates == 1 and emulator.stats().messages == 1


def test_identical_means_the_whole_request_json(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    api.send(checked(), token)
    variants = [
        checked("hello!"),  # nested content
        text("hello", touser="Alice", enable_duplicate_check=1),  # case of touser
        text("hello", touser="alice|bob", enable_duplicate_check=1),
        text("hello", touser="bob|alice", enable_duplicate_check=1),  # order of ids
        checked(safe=0),  # a default written out
        checked(duplicate_check_interval=1800),
        checked(enable_id_trans=0),
    ]
    for body in variants:
        api.send(body, token)
    assert len(emulator.messages()) == 1 + len(variants)
    assert emulator.duplicates() == []
    # the same JSON with other key order and spacing is identical
    body = checked()
    raw = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    assert api.send(raw, token)["errcode"] == 0
    assert len(emulator.messages()) == 1 + len(variants)
    assert [d.body for d in emulator.duplicates()] == [body]


def test_the_window_counts_from_the_delivery(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    first = api.send(checked(), token)["msgid"]
    emulator.advance(1000)
    assert api.send(checked(), token)["msgid"] == first
    emulator.advance(800)  # 1800 s after the delivery; the suppressed repeat doesn't extend it
    second = api.send(checked(), token)["msgid"]
    assert second != first and len(emulator.messages(touser="alice")) == 2
    longest = checked(duplicate_check_interval=14400)
    msgid = api.send(longest, token)["msgid"]
    emulator.advance(14399)
    assert api.send(longest, api.gettoken()["access_token"])["msgid"] == msgid
    emulator.advance(1)
    assert api.send(longest, api.gettoken()["access_token"])["msgid"] != msgid
    assert [d.msgid for d in emulator.duplicates()] == [first, msgid]


def test_duplicate_answer_new_msgid(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.set_duplicate_answer("new_msgid")
    first = api.send(checked(touser="alice|invalid_x"), token)
    second = api.send(checked(touser="alice|invalid_x"), token)
    assert second["errcode"] == 0 and second["invaliduser"] == "invalid_x"
    assert second["msgid"] != first["msgid"]
    assert [m.msgid for m in emulator.messages()] == [first["msgid"]]
    assert api.post("message/recall", {"msgid": second["msgid"]}, token)["errcode"] == 40058
    assert emulator.duplicates()[0].msgid == first["msgid"]


def test_duplicate_answer_errcode(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.set_duplicate_answer(45009)
    api.send(checked(), token)
    answer = api.send(checked(), token)
    assert answer["errcode"] == 45009 and "duplicate_check_interval" in answer["errmsg"]
    assert len(emulator.messages()) == 1
    assert [d.errcode for d in emulator.duplicates()] == [45009]
    emulator.reset()
    api = WeComApi(api.url, api.session)
    api.send(checked(), api.token())
    assert api.send(checked(), api.token())["errcode"] == 0  # reset: back to "original"


def test_duplicate_answer_setting() -> None:
    emulator = Emulator(duplicate_answer="new_msgid")
    app = emulator.apps()[0]
    first = emulator.send(app, checked())
    assert emulator.send(app, checked())["msgid"] != first["msgid"]
    emulator.set_duplicate_answer("original")
    emulator.reset()
    first = emulator.send(app, checked())
    assert emulator.send(app, checked())["msgid"] != first["msgid"]
    for bad in ("same", 0, True, None, 1.5):
        with pytest.raises(ValueError):
            emulator.set_duplicate_answer(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Emulator(duplicate_answer="first")  # type: ignore[arg-type]


def test_duplicates_over_the_control_api(
    api: WeComApi, emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    control = EmulatorControl(emulator_server.url, timeout=5)
    token = api.token()
    control.set_duplicate_answer(-1)
    msgid = api.send(checked(), token)["msgid"]
    assert api.send(checked(), token)["errcode"] == -1
    [record] = control.duplicates()
    assert record["msgid"] == msgid and record["body"] == checked()
    assert record["errcode"] == -1 and record["answered"] is True
    assert record["suppressed_at"] == START
    url = f"{emulator_server.url}/_emulator/duplicate_answer"
    for bad in ({}, {"answer": "nope"}, {"answer": 0}, {"answer": False}):
        assert requests.post(url, json=bad, timeout=5).status_code == 400, bad
    control.set_duplicate_answer("original")
    assert api.send(checked(), token)["msgid"] == msgid


# A client that re-sends after getting no answer: what the member sees in each case.


def test_resend_with_the_check_on_is_swallowed(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True, path="message/send")
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, checked())
    retry = api.send(checked(), token)
    [message] = emulator.messages(touser="alice")
    assert retry["errcode"] == 0 and retry["msgid"] == message.msgid
    assert not message.answered
    [duplicate] = emulator.duplicates()
    assert duplicate.msgid == message.msgid and duplicate.answered
    stats = emulator.stats()
    assert stats.delivered_unanswered == 1 and stats.duplicates == 1 and stats.messages == 1


def test_resend_without_the_check_reaches_the_member_twice(
    api: WeComApi, emulator: Emulator
) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True, path="message/send")
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, text(touser="alice"))
    assert api.send(text(touser="alice"), token)["errcode"] == 0
    assert [m.answered for m in emulator.messages(touser="alice")] == [False, True]
    assert emulator.duplicates() == []


def test_resend_with_a_changed_body_reaches_the_member_twice(
    api: WeComApi, emulator: Emulator
) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=True, path="message/send")
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, checked(safe=0))
    api.send(checked(safe=1), token)  # the check only covers the identical JSON
    assert len(emulator.messages(touser="alice")) == 2 and emulator.duplicates() == []


def test_resend_after_a_lost_call_is_delivered_once(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(1, deliver=False, path="message/send")
    with pytest.raises(requests.ReadTimeout):
        post_send(api.url, token, checked())
    retry = api.send(checked(), token)
    assert [m.msgid for m in emulator.messages(touser="alice")] == [retry["msgid"]]
    assert emulator.duplicates() == []


def test_an_unanswered_resend_is_recorded_as_such(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.no_answer_next(2, deliver=True, path="message/send")
    for _ in range(2):
        with pytest.raises(requests.ReadTimeout):
            post_send(api.url, token, checked())
    assert len(emulator.messages()) == 1
    [duplicate] = emulator.duplicates()
    assert not duplicate.answered
    first, second = emulator.unanswered()
    assert first.withheld == second.withheld  # the repeat would have got the first answer
    assert emulator.stats().delivered_unanswered == 1
