"""Duplicate checks, the silent per-member rate limit and message/recall."""

from __future__ import annotations

from emulator_helpers import WeComApi, text

from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorApp


def test_duplicate_check_answers_ok_without_delivering_twice(
    api: WeComApi, emulator: Emulator
) -> None:
    body = text(enable_duplicate_check=1)
    first, second = api.send(body), api.send(body)
    assert first["errcode"] == second["errcode"] == 0
    assert first["msgid"] == second["msgid"]
    assert len(emulator.messages()) == 1 and emulator.stats().duplicates == 1
    assert api.send(text("other", enable_duplicate_check=1))["msgid"] != first["msgid"]


def test_duplicate_check_interval(api: WeComApi, emulator: Emulator) -> None:
    body = text(enable_duplicate_check=1)
    first = api.send(body)
    emulator.advance(1799)
    assert api.send(body)["msgid"] == first["msgid"]
    emulator.advance(1)
    assert api.send(body)["msgid"] != first["msgid"]
    short = text(enable_duplicate_check=1, duplicate_check_interval=60)
    msgid = api.send(short)["msgid"]
    emulator.advance(60)
    assert api.send(short)["msgid"] != msgid


def test_duplicate_check_parameters(api: WeComApi) -> None:
    assert api.send(text(enable_duplicate_check=1, duplicate_check_interval=14400))["errcode"] == 0
    assert (
        api.send(text(enable_duplicate_check=1, duplicate_check_interval=14401))["errcode"] == 40058
    )
    assert api.send(text(enable_duplicate_check=1, duplicate_check_interval=0))["errcode"] == 40058
    assert api.send(text(enable_duplicate_check=2))["errcode"] == 40058


def test_without_duplicate_check_identical_bodies_are_delivered(
    api: WeComApi, emulator: Emulator
) -> None:
    assert api.send(text())["msgid"] != api.send(text())["msgid"]
    assert len(emulator.messages()) == 2


def test_duplicate_check_is_per_app(api: WeComApi, emulator: Emulator) -> None:
    emulator.add_app(EmulatorApp(DEFAULT_CORP_ID, 1000005, "s5"))
    api.send(text(enable_duplicate_check=1, agentid=1000005), api.token("s5"))
    api.send(text(enable_duplicate_check=1))
    assert len(emulator.messages()) == 2


def test_over_30_a_minute_to_one_member_is_silently_dropped(
    api: WeComApi, emulator: Emulator
) -> None:
    for _ in range(30):
        assert api.send(text(touser="alice"))["errcode"] == 0
    answer = api.send(text(touser="alice|bob"))
    assert answer["errcode"] == 0 and "invaliduser" not in answer
    last = emulator.messages()[-1]
    assert last.touser == ("bob",) and last.dropped == ("alice",)
    assert len(emulator.messages(touser="alice")) == 30
    assert emulator.stats().dropped == 1
    emulator.advance(60)
    api.send(text(touser="alice"))
    assert emulator.messages()[-1].touser == ("alice",)


def test_over_1000_an_hour_to_one_member_is_silently_dropped(
    api: WeComApi, emulator: Emulator
) -> None:
    for minute in range(34):
        for _ in range(30 if minute < 33 else 11):
            assert api.send(text(touser="alice"))["errcode"] == 0
        emulator.advance(60)
    assert len(emulator.messages(touser="alice")) == 1000
    assert emulator.messages()[-1].dropped == ("alice",)
    emulator.advance(3600 - 34 * 60 + 60)
    api.send(text(touser="alice", agentid=1000002), api.gettoken()["access_token"])
    assert emulator.messages()[-1].touser == ("alice",)


def test_recall_within_24_hours(api: WeComApi, emulator: Emulator) -> None:
    msgid = api.send(text())["msgid"]
    assert api.post("message/recall", {"msgid": msgid}) == {"errcode": 0, "errmsg": "ok"}
    assert emulator.messages()[0].recalled and emulator.stats().recalls == 1
    assert api.post("message/recall", {"msgid": msgid})["errcode"] == 40058
    old = api.send(text("old"))["msgid"]
    emulator.advance(24 * 3600)
    answer = api.post("message/recall", {"msgid": old}, api.gettoken()["access_token"])
    assert answer["errcode"] == 42052


def test_recall_errors(api: WeComApi) -> None:
    msgid = api.send(text())["msgid"]
    assert api.post("message/recall", {"msgid": "unknown"})["errcode"] == 40058
    assert api.post("message/recall", {})["errcode"] == 40058
    assert api.post("message/recall", {"msgid": 5})["errcode"] == 40058
    assert api.post("message/recall", {"msgid": msgid}, api.mini_token())["errcode"] == 40058
    assert api.get("message/recall", access_token=api.token())["errcode"] == 40058
