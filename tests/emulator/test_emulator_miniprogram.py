"""miniprogram_notice: who may send it, the appid link, @all and the 90201-90204 limits."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_helpers import MINI_AGENT, MINI_APPID, WeComApi

from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorApp


def notice(**change: Any) -> dict[str, Any]:
    """The official example body, minus agentid as documented, with payload overrides."""
    payload: dict[str, Any] = {
        "appid": MINI_APPID,
        "page": "pages/index?userid=zhangsan&orderid=123123123",
        "title": "会议室预订成功通知",
        "description": "4月27日 16:16",
        "emphasis_first_item": True,
        "content_item": [
            {"key": "会议室", "value": "402"},
            {"key": "会议地点", "value": "广州TIT-402会议室"},
        ],
    }
    payload.update(change)
    body = {"touser": "zhangsan|lisi", "toparty": "1|2", "totag": "1|2"}
    return {**body, "msgtype": "miniprogram_notice", "miniprogram_notice": payload}


def test_official_example_is_accepted_from_the_miniprogram_app(
    api: WeComApi, emulator: Emulator
) -> None:
    answer = api.send_mini(notice())
    assert answer["errcode"] == 0 and "response_code" not in answer
    [record] = emulator.messages(msgtype="miniprogram_notice")
    assert record.agent_id == MINI_AGENT and record.touser == ("zhangsan", "lisi")


def test_a_normal_app_gets_48002(api: WeComApi) -> None:
    assert api.send(notice())["errcode"] == 48002


def test_at_all_is_rejected(api: WeComApi) -> None:
    assert api.send_mini({**notice(), "touser": "@all"})["errcode"] == 40058


def test_a_stray_agentid_is_ignored(api: WeComApi) -> None:
    assert api.send_mini({**notice(), "agentid": 1})["errcode"] == 0


def test_the_miniprogram_app_may_send_ordinary_messages(api: WeComApi) -> None:
    body = {"touser": "zhangsan", "msgtype": "text", "text": {"content": "hi"}}
    assert api.send_mini({**body, "agentid": MINI_AGENT})["errcode"] == 0
    assert api.send_mini(body)["errcode"] == 41011


def test_appid_must_be_linked_to_this_app(api: WeComApi, emulator: Emulator) -> None:
    other = EmulatorApp(DEFAULT_CORP_ID, 1000009, "other-mini", True, ("wx_other_mini",))
    emulator.add_app(other)
    assert api.send_mini(notice(appid="wx_other_mini"))["errcode"] == 90208
    assert api.send_mini(notice(appid="wx_nowhere"))["errcode"] == 90206
    assert api.send_mini(notice(appid=""))["errcode"] == 90200
    assert api.send_mini(notice(appid=123))["errcode"] == 90207
    payload = notice()["miniprogram_notice"]
    del payload["appid"]
    assert api.send_mini({**notice(), "miniprogram_notice": payload})["errcode"] == 90200


def item(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


@pytest.mark.parametrize(
    ("change", "errcode"),
    [
        ({"content_item": [item("k", "v")] * 10}, 0),
        ({"content_item": [item("k", "v")] * 11}, 90201),
        ({"content_item": [item("k", "v")] * 10 + [item("", "")]}, 0),
        ({"content_item": [item("键" * 10, "值" * 30)]}, 0),
        ({"content_item": [item("", "v")]}, 90202),
        ({"content_item": [item("键" * 11, "v")]}, 90202),
        ({"content_item": [{"value": "v"}]}, 90202),
        ({"content_item": [item("k", "")]}, 90203),
        ({"content_item": [item("k", "值" * 31)]}, 90203),
        ({"content_item": [item("k", 5)]}, 90203),
        ({"content_item": "k=v"}, 40058),
        ({"page": "p" * 1024}, 0),
        ({"page": "页" * 342}, 90204),
        ({"page": 7}, 90204),
        ({"title": "四个汉字"}, 0),
        ({"title": "十二个汉字十二个汉字十二"}, 0),
        ({"title": "三个字"}, 40058),
        ({"title": "十三个汉字十三个汉字十三个"}, 40058),
        ({"title": ""}, 41016),
        ({"description": "短"}, 40058),
        ({"description": ""}, 0),
        ({"emphasis_first_item": "yes"}, 40058),
    ],
)
def test_notice_limits(api: WeComApi, change: dict[str, Any], errcode: int) -> None:
    assert api.send_mini(notice(**change))["errcode"] == errcode
