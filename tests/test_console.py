"""The sandbox console's JSON API on a real sandbox server: the state it assembles (members,
each member's chat, the timeline) from the real records, the callbacks its actions fire, and
a clear 4xx for bad input. The page itself is tested in a browser (test_console_browser.py)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from callback.app import create_app
from callback.config import from_mapping
from callback.devtools import sandbox as sandbox_mode
from callback.devtools.emulator import EmulatorControl
from callback.devtools.simulator import Simulator
from callback.errors import ConfigError
from tests.conftest import app_table, eventually, make_settings
from tests.console_fixtures import Sandbox, sandbox  # noqa: F401 - the fixture


def chat(box: Sandbox, member: str) -> list[dict[str, Any]]:
    return box.state()["chats"].get(member, [])  # type: ignore[no-any-return]


def entries(box: Sandbox, member: str) -> list[dict[str, Any]]:
    return [e for e in box.state()["timeline"] if e["member"] == member]


def test_state_lists_members_and_the_menu_and_never_a_secret(sandbox: Sandbox) -> None:  # noqa: F811
    sandbox.act("click", app="demo", member="zhangsan", key="MENU_HELP")
    state = sandbox.state()
    assert state["sandbox"] is True and state["apps"] == ["demo"]
    assert state["bots"] == ["assistant"]
    assert state["members"][:3] == ["zhangsan", "lisi", "wangwu"]
    menu = {b["key"]: b for b in state["menu"]}
    assert {"MENU_HELP", "MENU_ABOUT", "MENU_BOOK_ROOM", "MENU_APPROVAL"} <= set(menu)
    assert menu["MENU_HELP"]["handler"] == "callback.demo.menu.menu_text"
    assert menu["MENU_BOOK_ROOM"]["label"] == "Book room"
    assert re.fullmatch(r"[0-9a-f]{16}", state["version"])
    text = requests.get(f"{sandbox.url}/_console/api/state", timeout=10).text
    page = requests.get(f"{sandbox.url}/_console", timeout=10).text
    for name, value in sandbox.credentials().items():
        if name != "corp_id":  # the corp id is in every callback; the rest are secrets
            assert value not in text and value not in page, f"the console shows {name}"


def test_a_menu_click_is_answered_passively_and_shows_on_the_timeline(sandbox: Sandbox) -> None:  # noqa: F811
    fired = sandbox.act("click", app="demo", member="lisi", key="MENU_HELP")
    assert fired.status_code == 200
    assert fired.json()["reply"]["Content"] == "Send 'help' to see what I can do."
    said, answer = chat(sandbox, "lisi")[-2:]
    assert said["sender"] == "member" and said["content"] == {"event": "click", "key": "MENU_HELP"}
    assert answer["sender"] == "app" and answer["via"] == "passive"
    assert answer["content"] == {"content": "Send 'help' to see what I can do."}
    assert answer["key"] == said["key"]
    entry = next(e for e in entries(sandbox, "lisi") if e["key"] == said["key"])
    assert entry["what"] == "click MENU_HELP" and entry["route"] == "click('MENU_HELP') app=*"
    assert entry["handler"] == "callback.demo.menu.menu_text" and entry["answer"] == "passive"
    assert entry["state"] == "done" and entry["retries"] == 0 and entry["outbox"] == []
    assert 0 <= entry["took_ms"] < 4000


def test_the_notice_the_emulator_received_is_in_the_members_chat(sandbox: Sandbox) -> None:  # noqa: F811
    fired = sandbox.act("click", app="demo", member="wangwu", key="MENU_BOOK_ROOM")
    assert "Room 402 is booked" in fired.json()["reply"]["Content"]
    eventually(lambda: any(i["msgtype"] == "miniprogram_notice" for i in chat(sandbox, "wangwu")))
    notice = next(i for i in chat(sandbox, "wangwu") if i["msgtype"] == "miniprogram_notice")
    assert notice["app"] == "notices" and notice["via"] == "pushed" and notice["msgid"]
    content = notice["content"]
    assert content["title"] == "会议室预订成功" and content["emphasis_first_item"] is True
    assert content["content_item"][0] == {"key": "会议室", "value": "402"}
    entry = next(e for e in entries(sandbox, "wangwu") if e["what"] == "click MENU_BOOK_ROOM")
    sends = [o for o in entry["outbox"] if o["api"] == "message/send"]
    assert sends and sends[0]["state"] == "done" and notice["msgid"] in sends[0]["msgids"]


def test_ask_is_answered_later_by_the_send_api(sandbox: Sandbox) -> None:  # noqa: F811
    fired = sandbox.act("text", app="demo", member="zhaoliu", text="ask why?")
    assert fired.status_code == 200 and fired.json()["reply"] is None  # an empty 200 at once
    state = sandbox.state()
    assert "zhaoliu" in state["members"]
    entry = next(e for e in state["timeline"] if e["member"] == "zhaoliu")
    assert entry["handler"] == "callback.demo.assistant.ask" and "background" in entry["route"]
    assert entry["answer"] in ("running", "pushed")

    def answered() -> bool:
        return any(i["via"] == "pushed" for i in chat(sandbox, "zhaoliu"))

    eventually(answered, timeout=20)
    pushed = next(i for i in chat(sandbox, "zhaoliu") if i["via"] == "pushed")
    assert pushed["msgtype"] == "text"
    assert pushed["content"]["content"].startswith("You asked: 'why?'.")
    entry = next(e for e in entries(sandbox, "zhaoliu") if e["key"] == entry["key"])
    assert entry["answer"] == "pushed" and entry["took_ms"] >= 2500
    (reply,) = entry["outbox"]
    assert reply["id"].endswith(":reply") and reply["state"] == "done"
    assert pushed["msgid"] in reply["msgids"]


def cards(box: Sandbox, member: str, card_type: str) -> list[dict[str, Any]]:
    return [
        i
        for i in chat(box, member)
        if i["msgtype"] == "template_card" and i["content"]["card_type"] == card_type
    ]


def card_in(box: Sandbox, member: str, card_type: str) -> dict[str, Any]:
    eventually(lambda: bool(cards(box, member, card_type)))
    return cards(box, member, card_type)[-1]


def test_a_card_button_click_updates_the_card(sandbox: Sandbox) -> None:  # noqa: F811
    sandbox.act("click", app="demo", member="sunqi", key="MENU_APPROVAL")
    card = card_in(sandbox, "sunqi", "button_interaction")
    assert not card["updated"] and "replace_name" not in card["content"]
    keys = [b["key"] for b in card["content"]["button_list"]]
    assert keys == ["APPROVE", "REJECT"]
    fired = sandbox.act("card", app="demo", member="sunqi", msgid=card["msgid"], key="APPROVE")
    assert fired.status_code == 200, fired.text
    reply = fired.json()["reply"]
    assert reply["MsgType"] == "update_button" and reply["Button"]["ReplaceName"] == "Approved"
    updated = next(i for i in chat(sandbox, "sunqi") if i["id"] == card["id"])
    assert updated["updated"] and updated["content"]["replace_name"] == "Approved"
    click = [
        i for i in chat(sandbox, "sunqi") if i["content"].get("event") == "template_card_event"
    ]
    assert click[-1]["content"]["key"] == "APPROVE"
    assert click[-1]["content"]["task_id"] == card["content"]["task_id"]


def test_a_vote_is_submitted_with_its_choice(sandbox: Sandbox) -> None:  # noqa: F811
    sandbox.act("click", app="demo", member="zhouba", key="MENU_LUNCH_VOTE")
    card = card_in(sandbox, "zhouba", "vote_interaction")
    fired = sandbox.act("card", app="demo", member="zhouba", msgid=card["msgid"],
                        key="LUNCH_VOTE", selected={"LUNCH": ["salad"]})  # fmt: skip
    assert fired.json()["reply"]["Button"]["ReplaceName"] == "Voted: salad"
    updated = next(i for i in chat(sandbox, "zhouba") if i["id"] == card["id"])
    assert updated["content"]["replace_name"] == "Voted: salad"
    vote = next(i for i in chat(sandbox, "zhouba") if i["content"].get("key") == "LUNCH_VOTE")
    assert vote["content"]["selected"] == {"LUNCH": ["salad"]}


def test_an_ai_bot_chat_streams_through_refresh_callbacks(sandbox: Sandbox) -> None:  # noqa: F811
    first = sandbox.act("bot", bot="assistant", member="wuji", text="what is WeCom?")
    assert first.status_code == 200, first.text
    stream = first.json()["reply"]["stream"]
    assert stream["finish"] is False
    seen = [stream["content"]]
    deadline = time.monotonic() + 20
    while not stream["finish"] and time.monotonic() < deadline:
        time.sleep(0.5)
        refresh = sandbox.act("bot/refresh", bot="assistant", member="wuji", stream_id=stream["id"])
        assert refresh.status_code == 200, refresh.text
        stream = refresh.json()["reply"]["stream"]
        seen.append(stream["content"])
    final = "You asked: 'what is WeCom?'. Here is a considered answer: it depends."
    assert stream["finish"] and seen[-1] == final
    assert any(0 < len(s) < len(final) for s in seen), f"never saw it grow: {seen}"
    said, answer = sandbox.state()["bot_chats"]["wuji"][-2:]
    assert said["content"] == {"content": "what is WeCom?"} and said["app"] == "assistant"
    assert answer["msgtype"] == "stream" and answer["content"]["content"] == final
    assert answer["content"]["finished"] and answer["content"]["stream_id"] == stream["id"]
    entry = next(e for e in entries(sandbox, "wuji") if e["key"] == said["key"])
    assert entry["answer"] == "streamed" and entry["handler"] == "callback.demo.assistant.chat"


def test_wecoms_retries_are_counted_on_the_timeline(sandbox: Sandbox) -> None:  # noqa: F811
    creds = sandbox.credentials()
    sim = Simulator.create(creds["token"], creds["encoding_aes_key"], creds["corp_id"],
                           agent_id=sandbox_mode.AGENT_ID, user="qianjiu")  # fmt: skip
    fields = sim.text("help")
    for _ in range(3):  # WeCom's three tries of one message (re-encrypted each time)
        query, body = sim.post(fields)
        url = f"{sandbox.url}/wecom/callback/demo"
        assert requests.post(url, params=query, data=body, timeout=10).status_code == 200
    (entry,) = entries(sandbox, "qianjiu")
    assert entry["retries"] == 2 and entry["answer"] == "passive" and entry["attempts"] == 1
    assert [i["sender"] for i in chat(sandbox, "qianjiu")] == ["member", "app"]  # one reply


def test_a_send_wecom_refuses_is_a_dead_letter(sandbox: Sandbox) -> None:  # noqa: F811
    EmulatorControl(sandbox.state()["emulator"]["url"]).fail(
        1, errcode=48002, path="message/send", match={"touser": "zhengshi"}
    )
    sandbox.act("click", app="demo", member="zhengshi", key="MENU_APPROVAL")
    state = sandbox.state()
    entry = next(e for e in state["timeline"] if e["member"] == "zhengshi")
    (send,) = entry["outbox"]
    assert send["state"] == "dead" and send["failed"] == 1 and "48002" in send["error"]
    assert any(d["id"] == send["id"] for d in state["dead_letters"])


BAD = [
    ("click", {"app": "demo", "member": "zhangsan"}, 400),  # no key
    ("click", {"app": "nope", "member": "zhangsan", "key": "MENU_HELP"}, 404),
    ("click", {"app": "notices", "member": "zhangsan", "key": "MENU_HELP"}, 404),  # send-only
    ("click", {"app": "demo", "member": "a b<script>", "key": "MENU_HELP"}, 400),
    ("click", {"app": "demo", "member": "zhangsan", "key": ["MENU_HELP"]}, 400),
    ("text", {"app": "demo", "member": "zhangsan", "text": ""}, 400),
    ("text", {"app": "demo", "member": "zhangsan", "text": "x" * 3000}, 400),
    ("card", {"app": "demo", "member": "zhangsan", "msgid": "unknown", "key": "APPROVE"}, 404),
    ("card", {"app": "demo", "member": "zhangsan", "msgid": "m", "key": "K", "selected": 3}, 400),
    ("bot", {"bot": "nobody", "member": "zhangsan", "text": "hi"}, 404),
    ("bot/refresh", {"bot": "assistant", "member": "zhangsan", "stream_id": "../x"}, 400),
]


@pytest.mark.parametrize(("action", "body", "status"), BAD)
def test_bad_input_gets_a_clear_4xx(
    sandbox: Sandbox,  # noqa: F811
    action: str,
    body: dict[str, object],
    status: int,
) -> None:
    response = sandbox.act(action, **body)
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_bodies_that_are_not_json_objects_get_4xx(sandbox: Sandbox) -> None:  # noqa: F811
    url = f"{sandbox.url}/_console/api/click"
    assert requests.post(url, data="key=MENU_HELP", timeout=10).status_code == 415  # a form
    for body in ("[1]", "not json", '"text"'):
        response = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert response.status_code == 400, response.text
    assert requests.get(f"{sandbox.url}/_console/api/click", timeout=10).status_code == 405


def test_a_page_on_another_domain_cannot_reach_the_console(sandbox: Sandbox) -> None:  # noqa: F811
    """DNS rebinding: evil.example points its name at 127.0.0.1, and its page calls us with
    its own Host. The console answers only to localhost and IP addresses."""
    evil = {"Host": "evil.example:80"}
    state = requests.get(f"{sandbox.url}/_console/api/state", headers=evil, timeout=10)
    fired = requests.post(f"{sandbox.url}/_console/api/click", headers=evil, timeout=10,
                          json={"app": "demo", "member": "victim", "key": "MENU_HELP"})  # fmt: skip
    assert (state.status_code, fired.status_code) == (403, 403)
    assert "localhost or an IP address" in fired.json()["error"]
    assert chat(sandbox, "victim") == []  # nothing was fired
    port = sandbox.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        response = requests.get(f"{sandbox.url}/_console/api/state", headers={"Host": host})
        assert response.status_code == 200, host


def test_the_console_is_off_with_a_config_unless_asked_for() -> None:
    assert create_app(make_settings()).test_client().get("/_console").status_code == 404
    on = create_app(make_settings(console=True)).test_client()
    assert on.get("/_console").status_code == 200
    staging = {"Host": "staging.example.com"}  # behind the operator's own authentication
    assert on.get("/_console/api/state", headers=staging).status_code == 200
    assert on.get("/_console/api/state").json["sandbox"] is False
    off = from_mapping({"apps": {"hr": app_table()}, "server": {"console": "false"}})
    assert off.server.console is False
    with pytest.raises(ConfigError, match=r"server\.console: expected true or false"):
        from_mapping({"apps": {"hr": app_table()}, "server": {"console": "maybe"}})
