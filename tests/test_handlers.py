"""The shipped example handlers (handlers/), through the real app and default handler loading."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from callback.app import create_app
from callback.messages import Message, parse
from callback.simulator import Simulator
from tests.conftest import make_settings


@pytest.fixture
def app_client() -> FlaskClient:
    return create_app(make_settings()).test_client()  # handlers from the handlers/ package


def ask(
    c: FlaskClient, sim: Simulator, fields: dict[str, object], app: str = "hr"
) -> Message | None:
    query, body = sim.post(fields)
    response = c.post(f"/wecom/callback/{app}", query_string=query, data=body)
    assert response.status_code == 200
    plain = sim.open_reply(response.data)
    return parse(plain) if plain else None


def content(reply: Message | None) -> str:
    assert reply is not None and reply.msg_type == "text"
    return str(reply.raw["Content"])


def test_menu_clicks(app_client: FlaskClient, sim: Simulator) -> None:
    assert "help" in content(ask(app_client, sim, sim.click("MENU_HELP")))
    assert "wecom-callback" in content(ask(app_client, sim, sim.click("MENU_ABOUT")))
    assert ask(app_client, sim, sim.click("UNKNOWN_KEY")) is None  # fallback ignores events
    assert "Welcome, lisi" in content(ask(app_client, sim, sim.event("enter_agent", user="lisi")))


def test_chat_commands(app_client: FlaskClient, sim: Simulator) -> None:
    assert content(ask(app_client, sim, sim.text("help"))).startswith("Commands:")
    assert content(ask(app_client, sim, sim.text("echo 多行\ntext"))) == "多行\ntext"
    assert content(ask(app_client, sim, sim.text("order 12345"))).startswith("Order 12345")
    assert "don't know" in content(ask(app_client, sim, sim.text("order abc")))


def test_card_buttons(app_client: FlaskClient, sim: Simulator) -> None:
    for key, label in (("APPROVE", "Approved"), ("REJECT", "Rejected")):
        reply = ask(app_client, sim, sim.card_action(key, task_id="t-1"))
        assert reply is not None and reply.raw["Button"] == {"ReplaceName": label}


def test_book_room_click_sends_a_miniprogram_notice(sim: Simulator, tmp_path: Path) -> None:
    from callback import sandbox
    from callback.app import load_settings

    env = {"WECOM_SANDBOX_DIR": str(tmp_path)}
    emulator = sandbox.start_emulator(env)
    try:
        settings = load_settings(None, env | {sandbox.API_URL_ENV: emulator.url})
        demo = settings.apps["demo"]
        user_sim = Simulator.create(demo.token, demo.encoding_aes_key, demo.corp_id)
        c = create_app(settings).test_client()
        reply = ask(c, user_sim, user_sim.click("MENU_BOOK_ROOM", user="wangwu"), "demo")
        assert "Room 402 is booked" in content(reply)
        (record,) = emulator.emulator.messages()
        assert record.msgtype == "miniprogram_notice" and record.touser == ("wangwu",)
        assert record.body["miniprogram_notice"]["content_item"][1] == {
            "key": "预订人",
            "value": "wangwu",
        }
    finally:
        emulator.stop()


def test_assistant_answers_in_the_background(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callback import sandbox
    from callback.app import load_settings

    monkeypatch.setenv("ASSISTANT_DELAY_S", "0.5")
    env = {"WECOM_SANDBOX_DIR": str(tmp_path)}
    emulator = sandbox.start_emulator(env)
    try:
        settings = load_settings(None, env | {sandbox.API_URL_ENV: emulator.url})
        demo = settings.apps["demo"]
        user_sim = Simulator.create(demo.token, demo.encoding_aes_key, demo.corp_id)
        c = create_app(settings).test_client()
        started = time.perf_counter()
        assert ask(c, user_sim, user_sim.text("ask what is WeCom?", user="zhaoliu"), "demo") is None
        assert time.perf_counter() - started < 0.4  # answered before the model finished
        deadline = time.monotonic() + 10
        while not emulator.emulator.messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        (record,) = emulator.emulator.messages()
        assert record.touser == ("zhaoliu",)
        assert "You asked: 'what is WeCom?'" in record.body["text"]["content"]
    finally:
        emulator.stop()
