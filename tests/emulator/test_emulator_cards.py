"""template_card send rules, response_code issue and message/update_template_card."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from emulator_helpers import AGENT, WeComApi, message

from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorApp

URL_ACTION = {"type": 1, "url": "https://example.com"}
SUBMIT = {"text": "提交", "key": "submit"}
OPTIONS = [{"id": "one", "text": "一"}, {"id": "two", "text": "二"}]
MENU = {"desc": "更多", "action_list": [{"text": "不再提醒", "key": "mute"}]}

CARDS: dict[str, dict[str, Any]] = {
    "text_notice": {"main_title": {"title": "欢迎"}, "card_action": URL_ACTION},
    "news_notice": {
        "main_title": {"title": "新闻"},
        "card_image": {"url": "https://example.com/a.png", "aspect_ratio": 2.25},
        "vertical_content_list": [{"title": "v"}] * 4,
        "card_action": URL_ACTION,
    },
    "button_interaction": {
        "task_id": "task-1",
        "main_title": {"title": "审批"},
        "button_list": [{"text": f"b{i}", "key": f"k{i}", "style": 1} for i in range(6)],
    },
    "vote_interaction": {
        "task_id": "task-1",
        "checkbox": {"question_key": "q", "option_list": OPTIONS, "mode": 1},
        "submit_button": SUBMIT,
    },
    "multiple_interaction": {
        "task_id": "task-1",
        "select_list": [{"question_key": f"q{i}", "option_list": OPTIONS} for i in range(3)],
        "submit_button": SUBMIT,
    },
}


def card(kind: str, **change: Any) -> dict[str, Any]:
    """A valid card of kind with top-level overrides (None deletes a field)."""
    payload = {"card_type": kind, **copy.deepcopy(CARDS[kind]), **change}
    return message("template_card", {k: v for k, v in payload.items() if v is not None})


@pytest.mark.parametrize("card_type", sorted(CARDS))
def test_every_card_type_is_accepted(api: WeComApi, card_type: str) -> None:
    answer = api.send(card(card_type))
    assert answer["errcode"] == 0, answer
    assert ("response_code" in answer) == card_type.endswith("interaction")


@pytest.mark.parametrize("card_type", ["text_notice", "news_notice"])
def test_notice_with_action_menu_needs_task_id_and_gets_a_response_code(
    api: WeComApi, card_type: str
) -> None:
    assert api.send(card(card_type, action_menu=MENU))["errcode"] == 42032
    answer = api.send(card(card_type, action_menu=MENU, task_id="menu-1"))
    assert answer["errcode"] == 0 and answer["response_code"]


@pytest.mark.parametrize(
    ("card_type", "change", "errcode"),
    [
        ("text_notice", {"card_type": "big_card"}, 42031),
        ("text_notice", {"card_type": None}, 42031),
        ("button_interaction", {"task_id": None}, 42032),
        ("button_interaction", {"task_id": "has space"}, 42032),
        ("button_interaction", {"task_id": "t" * 129}, 42032),
        ("button_interaction", {"task_id": "A-z_0@" + "t" * 122}, 0),
        ("text_notice", {"card_action": None}, 42036),
        ("text_notice", {"card_action": {"type": 1}}, 42036),
        ("text_notice", {"card_action": {"type": 0}}, 42036),
        ("text_notice", {"main_title": None}, 42040),
        ("text_notice", {"source": {"desc_color": 4}}, 42027),
        ("text_notice", {"action_menu": {"action_list": []}, "task_id": "t"}, 42028),
        ("text_notice", {"horizontal_content_list": [{"keyname": "k"}] * 7}, 42034),
        ("text_notice", {"horizontal_content_list": [{"keyname": "k", "type": 1}]}, 42034),
        ("text_notice", {"jump_list": [{"title": "j", **URL_ACTION}] * 4}, 42035),
        ("text_notice", {"quote_area": {"type": 1}}, 42030),
        ("news_notice", {"image_text_area": {"image_url": "https://i"}}, 42041),
        ("news_notice", {"card_image": {"url": "https://i", "aspect_ratio": 3}}, 42041),
        ("news_notice", {"vertical_content_list": [{"title": "v"}] * 5}, 42042),
        ("button_interaction", {"button_list": [{"text": "b", "key": "k"}] * 7}, 42037),
        ("button_interaction", {"button_list": [{"text": "b", "key": "k"}] * 2}, 42037),
        ("button_interaction", {"button_list": []}, 42037),
        ("button_interaction", {"button_list": [{"key": "k"}]}, 42038),
        ("button_interaction", {"button_list": [{"text": "b", "type": 1}]}, 42037),
        ("button_interaction", {"button_list": [{"text": "b", "key": "k" * 1025}]}, 42037),
        ("vote_interaction", {"checkbox": None}, 42044),
        ("vote_interaction", {"checkbox": {"question_key": "q", "option_list": []}}, 42044),
        ("vote_interaction", {"submit_button": None}, 42045),
        ("multiple_interaction", {"select_list": []}, 42046),
        (
            "multiple_interaction",
            {"select_list": [{"question_key": "q", "option_list": OPTIONS}] * 4},
            42046,
        ),
        (
            "multiple_interaction",
            {"select_list": [{"question_key": "q", "option_list": OPTIONS * 2}]},
            42046,
        ),
    ],
)
def test_card_field_errors(
    api: WeComApi, card_type: str, change: dict[str, Any], errcode: int
) -> None:
    assert api.send(card(card_type, **change))["errcode"] == errcode


def test_vote_allows_twenty_options(api: WeComApi) -> None:
    options = [{"id": f"o{i}", "text": str(i)} for i in range(21)]
    checkbox = {"question_key": "q", "option_list": options[:20]}
    assert api.send(card("vote_interaction", checkbox=checkbox))["errcode"] == 0
    checkbox = {"question_key": "q", "option_list": options, "task_id": "x"}
    assert api.send(card("vote_interaction", checkbox=checkbox, task_id="t2"))["errcode"] == 42044


def test_task_id_is_unique_per_app(api: WeComApi) -> None:
    assert api.send(card("button_interaction"))["errcode"] == 0
    assert api.send(card("button_interaction"))["errcode"] == 42033
    assert api.send(card("vote_interaction"))["errcode"] == 42033


def update(response_code: str, **extra: Any) -> dict[str, Any]:
    body = {"userids": ["zhangsan"], "agentid": AGENT, "response_code": response_code}
    return {**body, "button": {"replace_name": "已处理"}, **extra}


def test_update_button_once(api: WeComApi, emulator: Emulator) -> None:
    sent = api.send(card("button_interaction"))
    answer = api.post("message/update_template_card", update(sent["response_code"]))
    assert answer == {"errcode": 0, "errmsg": "ok", "invaliduser": []}
    [record] = emulator.updates()
    assert record.msgid == sent["msgid"] and record.body["button"] == {"replace_name": "已处理"}
    again = api.post("message/update_template_card", update(sent["response_code"]))
    assert again["errcode"] == 60140


def test_update_lists_non_recipients_and_accepts_a_new_card(api: WeComApi) -> None:
    code = api.send(card("vote_interaction"))["response_code"]
    body = update(code, userids=["ZhangSan", "stranger"], button=None)
    body["template_card"] = card("text_notice")["template_card"]
    del body["button"]
    answer = api.post("message/update_template_card", body)
    assert answer["errcode"] == 0 and answer["invaliduser"] == ["stranger"]


def test_response_code_lives_72_hours(api: WeComApi, emulator: Emulator) -> None:
    first = api.send(card("button_interaction"))["response_code"]
    second = api.send(card("button_interaction", task_id="task-2"))["response_code"]
    emulator.advance(72 * 3600 - 1)
    token = api.gettoken()["access_token"]
    assert api.post("message/update_template_card", update(first), token)["errcode"] == 0
    emulator.advance(1)
    assert api.post("message/update_template_card", update(second), token)["errcode"] == 60140


def test_update_errors(api: WeComApi, emulator: Emulator) -> None:
    code = api.send(card("button_interaction"))["response_code"]

    def post(body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        return api.post("message/update_template_card", body, token)

    assert post(update("unknown"))["errcode"] == 60140
    assert post(update(code, agentid=None))["errcode"] == 41011
    assert post(update(code, agentid=1))["errcode"] == 40056
    assert post(update(code, userids=None))["errcode"] == 40058
    assert post({**update(code), "template_card": {"card_type": "text_notice"}})["errcode"] == 40058
    assert post(update(code, button={}))["errcode"] == 40058
    emulator.add_app(EmulatorApp(DEFAULT_CORP_ID, 1000004, "second-secret"))
    other = api.token("second-secret")
    assert post(update(code, agentid=1000004), other)["errcode"] == 42015
    menu_card = api.send(card("text_notice", action_menu=MENU, task_id="m1"))
    assert post(update(menu_card["response_code"]))["errcode"] == 40058
    assert post(update(code, userids=None, atall=1))["errcode"] == 0


def test_a_click_gives_a_fresh_response_code(api: WeComApi, emulator: Emulator) -> None:
    sent = api.send(card("button_interaction"))
    assert api.post("message/update_template_card", update(sent["response_code"]))["errcode"] == 0
    clicked = emulator.issue_response_code(sent["msgid"])
    assert api.post("message/update_template_card", update(clicked))["errcode"] == 0
