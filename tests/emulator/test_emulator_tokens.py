"""gettoken, access_token lifetime, revocation and getcallbackip against a real emulator server."""

from __future__ import annotations

import requests
from emulator_helpers import AGENT, MINI_AGENT, WeComApi, text

from callback.devtools.emulator import DEFAULT_CORP_ID, DEFAULT_SECRET, Emulator, EmulatorApp


def test_gettoken_issues_an_opaque_token_for_7200_seconds(
    api: WeComApi, emulator: Emulator
) -> None:
    answer = api.gettoken()
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok"
    assert answer["expires_in"] == 7200
    assert 0 < len(answer["access_token"].encode()) < 512
    assert emulator.stats().gettoken == {f"{DEFAULT_CORP_ID}/{AGENT}": 1}


def test_each_call_gives_a_fresh_token_and_earlier_ones_stay_valid(api: WeComApi) -> None:
    first, second = api.gettoken()["access_token"], api.gettoken()["access_token"]
    assert first != second
    assert api.send(text(), first)["errcode"] == 0
    assert api.send(text(), second)["errcode"] == 0


def test_gettoken_parameter_errors(api: WeComApi, emulator: Emulator) -> None:
    assert api.get("gettoken", corpsecret=DEFAULT_SECRET)["errcode"] == 41002
    assert api.get("gettoken", corpid=DEFAULT_CORP_ID)["errcode"] == 41004
    wrong_name = api.get("gettoken", corpid=DEFAULT_CORP_ID, secret=DEFAULT_SECRET)
    assert wrong_name["errcode"] == 41004 and "corpsecret" in wrong_name["errmsg"]
    assert api.gettoken(corpid="ww_unknown")["errcode"] == 40013
    assert api.gettoken(secret="not-the-secret")["errcode"] == 40001
    emulator.add_app(EmulatorApp("ww_other_corp", 1000002, "other-secret"))
    assert api.gettoken(secret="other-secret")["errcode"] == 40091
    assert api.gettoken("other-secret", "ww_other_corp")["errcode"] == 0


def test_errmsg_looks_like_wecom(api: WeComApi) -> None:
    answer = api.send(text(), token="bogus")
    assert answer["errcode"] == 40014
    assert answer["errmsg"].startswith("invalid access_token")
    assert "hint: [" in answer["errmsg"] and "from ip: 127.0.0.1" in answer["errmsg"]
    assert answer["errmsg"].endswith(
        "more info at https://open.work.weixin.qq.com/devtool/query?e=40014"
    )


def test_gettoken_requires_get(api: WeComApi) -> None:
    url = f"{api.url}/cgi-bin/gettoken"
    response = requests.post(
        url, params={"corpid": DEFAULT_CORP_ID, "corpsecret": DEFAULT_SECRET}, timeout=5
    )
    assert response.status_code == 200 and response.json()["errcode"] == 40058


def test_token_expires_by_the_emulator_clock(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    emulator.advance(7199)
    assert api.send(text(), token)["errcode"] == 0
    emulator.advance(1)
    assert api.send(text(), token)["errcode"] == 42001
    assert api.send(text(), api.gettoken()["access_token"])["errcode"] == 0


def test_expire_and_revoke_tokens(api: WeComApi, emulator: Emulator) -> None:
    token = api.token()
    assert emulator.expire_tokens() == 1
    assert api.send(text(), token)["errcode"] == 42001
    assert emulator.revoke_tokens() == 1
    assert api.send(text(), token)["errcode"] == 40014


def test_missing_or_misplaced_token_is_41001(api: WeComApi) -> None:
    url = f"{api.url}/cgi-bin/message/send"
    assert requests.post(url, json=text(), timeout=5).json()["errcode"] == 41001
    in_body = requests.post(url, json={**text(), "access_token": api.token()}, timeout=5)
    assert in_body.json()["errcode"] == 41001


def test_a_token_only_works_for_its_own_app(api: WeComApi) -> None:
    assert api.send(text(agentid=MINI_AGENT))["errcode"] == 40056
    assert api.send(text(agentid=MINI_AGENT), api.mini_token())["errcode"] == 0
    assert api.send(text(), api.mini_token())["errcode"] == 40056


def test_getcallbackip(api: WeComApi) -> None:
    answer = api.get("getcallbackip", access_token=api.token())
    assert answer["errcode"] == 0 and "127.0.0.1" in answer["ip_list"]
    assert api.get("getcallbackip")["errcode"] == 41001
    assert api.get("getcallbackip", access_token="nope")["errcode"] == 40014
