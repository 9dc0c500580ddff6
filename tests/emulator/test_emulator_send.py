"""message/send: envelope, recipients and every ordinary msgtype at and beyond its limits."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_helpers import AGENT, MINI_APPID, WeComApi, message, text

from callback.devtools.emulator import Emulator, EmulatorApp


def test_text_is_accepted_and_recorded(api: WeComApi, emulator: Emulator) -> None:
    answer = api.send(text("你好", touser="ZhangSan|lisi"))
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok"
    assert "response_code" not in answer and "invaliduser" not in answer
    [record] = emulator.messages()
    assert record.msgid == answer["msgid"] and record.msgtype == "text"
    assert record.touser == ("zhangsan", "lisi") and record.agent_id == AGENT
    assert record.body["text"] == {"content": "你好"} and record.sent_at == emulator.now()
    assert api.send(text())["msgid"] != answer["msgid"]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (b"not json", 40058),
        (b"[1, 2]", 40058),
        (b'{"touser": NaN}', 40058),
        (b"\xff\xfe", 40058),
        ({"touser": "a", "agentid": AGENT, "text": {"content": "x"}}, 40008),
        (text(msgtype="sms"), 40008),
        (text(msgtype="taskcard"), 40008),
        ({"touser": "a", "msgtype": "text", "text": {"content": "x"}}, 41011),
        (text(agentid="1000002"), 40058),
        (text(agentid=1), 40056),
        (text(safe=3), 40058),
        (text(safe=2), 40058),
        (text(enable_id_trans=2), 40058),
    ],
)
def test_envelope_errors(api: WeComApi, body: Any, errcode: int) -> None:
    assert api.send(body)["errcode"] == errcode


def test_send_requires_post(api: WeComApi) -> None:
    assert api.get("message/send", access_token=api.token())["errcode"] == 40058


@pytest.mark.parametrize(
    ("recipients", "errcode"),
    [
        ({"touser": ""}, 82001),
        ({"to_user": "zhangsan"}, 82001),
        ({"touser": ["zhangsan"]}, 40058),
        ({"touser": "", "toparty": 1}, 40058),
        ({"touser": "|".join(f"u{i}" for i in range(1001))}, 40031),
        ({"touser": "", "toparty": "|".join(str(i) for i in range(1, 102))}, 82002),
        ({"touser": "", "totag": "|".join(str(i) for i in range(1, 102))}, 82003),
        ({"touser": "invalid_a|invalid_b"}, 81013),
        ({"touser": "zhang san"}, 81013),
        ({"touser": "a | b"}, 81013),
        ({"touser": "", "toparty": "404", "totag": "x"}, 81013),
    ],
)
def test_recipient_errors(api: WeComApi, recipients: dict[str, Any], errcode: int) -> None:
    body = text()
    del body["touser"]
    assert api.send({**body, **recipients})["errcode"] == errcode


def test_limits_at_the_edge_are_accepted(api: WeComApi) -> None:
    users = "|".join(f"u{i}" for i in range(1000))
    groups = "|".join(str(i) for i in range(1, 101))
    assert api.send(text(touser=users, toparty=groups, totag=groups))["errcode"] == 0


def test_invalid_and_unlicensed_recipients_are_reported(api: WeComApi, emulator: Emulator) -> None:
    body = text(touser="Alice|Invalid_Bob|unlicensed_carol", toparty="1|404", totag="2|404")
    answer = api.send(body)
    assert answer["errcode"] == 0
    assert answer["invaliduser"] == "invalid_bob"
    assert answer["unlicenseduser"] == "unlicensed_carol"
    assert answer["invalidparty"] == "404" and answer["invalidtag"] == "404"
    [record] = emulator.messages()
    assert (record.touser, record.toparty, record.totag) == (("alice",), ("1",), ("2",))


def test_all_invalid_answers_81013_with_the_lists(api: WeComApi) -> None:
    answer = api.send(text(touser="invalid_x|Unlicensed_Y"))
    assert answer["errcode"] == 81013
    assert answer["invaliduser"] == "invalid_x" and answer["unlicenseduser"] == "unlicensed_y"


def test_visible_range_and_at_all(api: WeComApi, emulator: Emulator) -> None:
    app = EmulatorApp("ww_small", 5, "small-secret", users=frozenset({"Ann", "ben"}))
    emulator.add_app(app)
    token = api.token("small-secret", "ww_small")
    answer = api.send(text(agentid=5, touser="ann|zhangsan"), token)
    assert answer["errcode"] == 0 and answer["invaliduser"] == "zhangsan"
    assert api.send(text(agentid=5, touser="@all"), token)["errcode"] == 0
    assert emulator.messages()[-1].touser == ("ann", "ben")


def test_text_and_markdown_limits(api: WeComApi) -> None:
    exactly = "汉" * 682 + "ab"  # 2048 bytes
    for msgtype in ("text", "markdown"):
        ok = api.send(message(msgtype, {"content": exactly}))
        assert ok["errcode"] == 0, ok
        assert api.send(message(msgtype, {"content": exactly + "c"}))["errcode"] == 45002
        assert api.send(message(msgtype, {"content": ""}))["errcode"] == 44004
        assert api.send(message(msgtype, {}))["errcode"] == 44004
        assert api.send(message(msgtype, {"content": 5}))["errcode"] == 40058
    assert api.send({**text(), "text": "hello"})["errcode"] == 40058
    assert api.send({k: v for k, v in text().items() if k != "text"})["errcode"] == 44004


@pytest.mark.parametrize("msgtype", ["image", "voice", "file"])
def test_media_messages_need_an_uploaded_media_id(api: WeComApi, msgtype: str) -> None:
    media_id = api.media_id(msgtype if msgtype != "image" else "image")
    assert api.send(message(msgtype, {"media_id": media_id}))["errcode"] == 0
    assert api.send(message(msgtype, {}))["errcode"] == 40007
    assert api.send(message(msgtype, {"media_id": "MEDIA_ID"}))["errcode"] == 40007


def test_media_id_lives_three_days(api: WeComApi, emulator: Emulator) -> None:
    media_id = api.media_id()
    emulator.advance(3 * 86400 - 1)
    fresh = api.gettoken()["access_token"]
    assert api.send(message("image", {"media_id": media_id}), fresh)["errcode"] == 0
    emulator.advance(1)
    assert api.send(message("image", {"media_id": media_id}), fresh)["errcode"] == 40007


def test_video(api: WeComApi) -> None:
    payload = {"media_id": api.media_id("video"), "title": "t", "description": "d"}
    assert api.send(message("video", payload))["errcode"] == 0
    assert api.send(message("video", {**payload, "title": 1}))["errcode"] == 40058


TEXTCARD = {
    "title": "领奖通知",
    "description": "恭喜",
    "url": "https://example.com",
    "btntxt": "更多",
}


@pytest.mark.parametrize(
    ("change", "errcode"),
    [
        ({}, 0),
        ({"title": "t" * 128, "description": "d" * 512, "btntxt": "四个字符"}, 0),
        ({"url": "http://example.com/" + "x" * 2029}, 0),
        ({"title": None}, 41016),
        ({"title": "t" * 129}, 45002),
        ({"description": ""}, 41033),
        ({"description": "d" * 513}, 45002),
        ({"url": None}, 40058),
        ({"url": "example.com"}, 40058),
        ({"url": "http://example.com/" + "x" * 2030}, 45002),
        ({"btntxt": "五个字符长"}, 45002),
    ],
)
def test_textcard(api: WeComApi, change: dict[str, Any], errcode: int) -> None:
    payload = {k: v for k, v in {**TEXTCARD, **change}.items() if v is not None}
    assert api.send(message("textcard", payload))["errcode"] == errcode


ARTICLE = {"title": "标题", "description": "d", "url": "https://example.com", "picurl": "https://p"}


@pytest.mark.parametrize(
    ("articles", "errcode"),
    [
        ([ARTICLE], 0),
        ([ARTICLE] * 8, 0),
        ([{"title": "t", "appid": MINI_APPID, "pagepath": "pages/index"}], 0),
        ([ARTICLE] * 9, 45008),
        ([], 40058),
        ([{**ARTICLE, "title": ""}], 41016),
        ([{**ARTICLE, "title": "t" * 129}], 45002),
        ([{"title": "t"}], 40058),
        ([{"title": "t", "appid": MINI_APPID}], 40058),
        ([{"title": "t", "appid": "wx_not_linked", "pagepath": "p"}], 90206),
        (["not an object"], 40058),
    ],
)
def test_news(api: WeComApi, articles: list[Any], errcode: int) -> None:
    assert api.send(message("news", {"articles": articles}))["errcode"] == errcode


def test_news_rejects_safe(api: WeComApi) -> None:
    assert api.send(message("news", {"articles": [ARTICLE]}, safe=1))["errcode"] == 40074


def test_mpnews(api: WeComApi) -> None:
    article = {"title": "t", "thumb_media_id": api.media_id(), "content": "<p>hi</p>"}
    assert api.send(message("mpnews", {"articles": [article] * 8}, safe=2))["errcode"] == 0
    assert api.send(message("mpnews", {"articles": [article] * 9}))["errcode"] == 45008
    for change, errcode in [
        ({"thumb_media_id": ""}, 40007),
        ({"thumb_media_id": "nope"}, 40007),
        ({"content": ""}, 44004),
        ({"title": ""}, 41016),
        ({"author": "a" * 65}, 45032),
        ({"digest": "d" * 513}, 45002),
    ]:
        answer = api.send(message("mpnews", {"articles": [{**article, **change}]}))
        assert answer["errcode"] == errcode, change
