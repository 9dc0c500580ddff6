"""The emulator's AI-bot response_url (§2.9): plain JSON, once, within 1 h, cards in singles."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from aibot_helpers import BOT_ID, EAK, TOKEN, StandInBot, stream

from callback.devtools.aibot import AibotSide
from callback.devtools.emulator import Emulator, EmulatorControl, EmulatorServer

CARD = {"card_type": "text_notice", "main_title": {"title": "done"}, "card_action": {"type": 1}}


def markdown(content: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": content, **extra}}


def post(server: EmulatorServer, code: str | None, body: Any) -> dict[str, Any]:
    params = {} if code is None else {"response_code": code}
    kw: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = requests.post(f"{server.url}/cgi-bin/aibot/response", params=params, timeout=5, **kw)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_markdown_is_shown_once(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    code = emulator.register_aibot_response_code(chattype="single", msgid="m1").code
    assert post(emulator_server, code, markdown(feedback={"id": "fb"})) == {
        "errcode": 0,
        "errmsg": "ok",
    }
    (record,) = emulator.aibot_responses()
    assert record.shown and record.msgid == "m1" and record.msgtype == "markdown"
    assert record.body == markdown(feedback={"id": "fb"})
    assert emulator.aibot_response_codes()[0].used_at == emulator.now()


def test_second_call_is_silently_accepted_and_not_shown_by_default(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    code = emulator.register_aibot_response_code().code
    post(emulator_server, code, markdown("first"))
    assert post(emulator_server, code, markdown("second"))["errcode"] == 0
    assert [r.shown for r in emulator.aibot_responses(response_code=code)] == [True, False]
    assert [r.body for r in emulator.aibot_responses(shown=True)] == [markdown("first")]


def test_second_call_can_be_an_error(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    emulator.set_aibot_response_policy(second_call=846606)
    code = emulator.register_aibot_response_code().code
    post(emulator_server, code, markdown("first"))
    answer = post(emulator_server, code, markdown("second"))
    assert answer["errcode"] == 846606
    assert answer["errmsg"].startswith("request already responded")
    assert [r.errcode for r in emulator.aibot_responses()] == [0, 846606]


def test_valid_for_one_hour_by_the_emulators_clock(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    early, late = (emulator.register_aibot_response_code().code for _ in range(2))
    emulator.advance(3599)
    assert post(emulator_server, early, markdown())["errcode"] == 0
    emulator.advance(1)
    assert post(emulator_server, late, markdown())["errcode"] == 60140
    assert not emulator.aibot_responses(response_code=late)[0].shown


def test_template_card_only_into_a_single_chat(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    group = emulator.register_aibot_response_code(chattype="group", chatid="wrCHAT").code
    card = {"msgtype": "template_card", "template_card": CARD}
    assert post(emulator_server, group, card)["errcode"] == 40008
    assert post(emulator_server, group, markdown())["errcode"] == 0  # the refusal spent nothing
    single = emulator.register_aibot_response_code(chattype="single").code
    assert post(emulator_server, single, card)["errcode"] == 0
    bad = {"msgtype": "template_card", "template_card": {"card_type": "poster"}}
    other = emulator.register_aibot_response_code().code
    assert post(emulator_server, other, bad)["errcode"] == 42031


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (markdown("天" * 6827), 45002),
        (markdown(""), 44004),
        (markdown(feedback={"id": "x" * 257}), 40058),
        ({"msgtype": "text", "text": {"content": "hi"}}, 40008),
        (stream("s", "done", True), 40008),
        (b"not json", 40058),
    ],
)
def test_refused_bodies_are_recorded_and_spend_nothing(
    emulator_server: EmulatorServer, emulator: Emulator, body: Any, errcode: int
) -> None:
    code = emulator.register_aibot_response_code().code
    assert post(emulator_server, code, body)["errcode"] == errcode
    assert post(emulator_server, code, markdown("天" * 6826))["errcode"] == 0  # 20478 bytes
    assert [(r.errcode, r.shown) for r in emulator.aibot_responses()] == [
        (errcode, False),
        (0, True),
    ]


def test_finished_stream_behind_the_lenient_knob(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    emulator.set_aibot_response_policy(accept_stream=True)
    code = emulator.register_aibot_response_code().code
    assert post(emulator_server, code, stream("s", "partial"))["errcode"] == 40058
    assert post(emulator_server, code, stream("s", "all of it", True))["errcode"] == 0
    assert emulator.aibot_responses(shown=True)[0].msgtype == "stream"


def test_unknown_or_missing_code_and_wrong_method(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    assert post(emulator_server, "nope", markdown())["errcode"] == 60140
    assert post(emulator_server, None, markdown())["errcode"] == 60140
    got = requests.get(f"{emulator_server.url}/cgi-bin/aibot/response", timeout=5).json()
    assert got["errcode"] == 40058
    assert emulator.stats().calls["aibot/response"] == 3


def test_faults_apply_to_the_response_url(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    emulator.fail_next(1, errcode=-1, path="aibot/response")
    code = emulator.register_aibot_response_code().code
    assert post(emulator_server, code, markdown())["errcode"] == -1
    assert post(emulator_server, code, markdown())["errcode"] == 0


def test_control_api(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    control = EmulatorControl(emulator_server.url)
    entry = control.register_aibot_response_code("code-1", chattype="group", msgid="m")
    assert entry["expires_at"] == entry["issued_at"] + 3600
    assert control.aibot_response_codes()[0]["response_code"] == "code-1"
    control.set_aibot_response_policy(second_call=846606, accept_stream=True)
    post(emulator_server, "code-1", markdown())
    post(emulator_server, "code-1", markdown())
    records = control.aibot_responses(response_code="code-1")
    assert [(r["errcode"], r["shown"], r["chattype"]) for r in records] == [
        (0, True, "group"),
        (846606, False, "group"),
    ]
    assert len(control.aibot_responses(shown=False)) == 1
    with pytest.raises(requests.HTTPError):
        control.register_aibot_response_code("code-1")  # codes are unique
    control.reset()
    assert control.aibot_responses() == [] and control.aibot_response_codes() == []
    fresh = control.register_aibot_response_code()
    assert post(emulator_server, fresh["response_code"], markdown())["errcode"] == 0
    assert post(emulator_server, fresh["response_code"], markdown())["errcode"] == 0  # policy reset


def test_aibot_side_registers_its_codes_and_a_bot_answers_through_them(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    """End to end: the stand-in bot finishes its stream, then POSTs the full answer."""

    def bot(plain: dict[str, Any]) -> Any:
        url = plain["response_url"]
        body = (
            markdown("full answer")
            if plain["chattype"] == "group"
            else {
                "msgtype": "template_card",
                "template_card": CARD,
            }
        )
        requests.post(url, json=body, timeout=5).raise_for_status()
        if plain["chattype"] == "group":
            requests.post(url, json={"msgtype": "template_card", "template_card": CARD}, timeout=5)
        return stream("s", "see below", True)

    with (
        StandInBot(bot) as server,
        AibotSide(server.url, TOKEN, EAK, BOT_ID, response_url_base=emulator_server.url) as side,
    ):
        single = side.converse(side.text("hi"))
        group = side.converse(side.group_text("hi"))
    assert single.response_url is not None
    assert single.response_url.startswith(f"{emulator_server.url}/cgi-bin/aibot/response?")
    (shown,) = emulator.aibot_responses(response_code=single.response_code)
    assert shown.shown and shown.msgtype == "template_card" and shown.msgid == single.msgid
    records = emulator.aibot_responses(response_code=group.response_code)
    assert [(r.chattype, r.msgtype, r.shown) for r in records] == [
        ("group", "markdown", True),
        ("group", "template_card", False),
    ]
    assert records[0].chatid == group.message["chatid"]
