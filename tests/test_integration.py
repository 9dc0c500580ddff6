"""The real server under gunicorn (2 workers) on 127.0.0.1, driven over HTTP like WeCom does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from callback.devtools.simulator import Simulator
from callback.inbound.messages import TextMessage, parse
from tests.conftest import AES_KEY, CORP_ID, TOKEN

CONFIG = """
[server]
state = "sqlite:///{state}"
handlers = ["callback.demo.chat", "callback.demo.menu", "callback.demo.cards",
            "callback.demo.fallback"]

[apps.hr]
corp_id = "{CORP_ID}"
agent_id = 1000002
secret = "unused"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
"""


def test_gunicorn_serves_verification_text_click_and_card(
    gunicorn_server: Callable[..., str], sim: Simulator, tmp_path: Path
) -> None:
    config = CONFIG.format(
        state=tmp_path / "state.db", CORP_ID=CORP_ID, TOKEN=TOKEN, AES_KEY=AES_KEY
    )
    base = gunicorn_server(config, workers=2)
    url = f"{base}/wecom/callback/hr"

    query, echo = sim.verification()
    response = requests.get(url + "?" + sim.query_string(query), timeout=5)
    assert (response.status_code, response.text) == (200, echo)

    def send(fields: dict[str, object]) -> bytes:
        query, body = sim.post(fields)
        response = requests.post(url, params=query, data=body, timeout=5)
        assert response.status_code == 200, response.text
        return sim.open_reply(response.content)

    reply = parse(send(sim.text("echo 你好, gunicorn")))
    assert isinstance(reply, TextMessage) and reply.content == "你好, gunicorn"
    assert (reply.to_user, reply.from_user) == (sim.user, CORP_ID)

    reply = parse(send(sim.click("MENU_HELP")))
    assert isinstance(reply, TextMessage) and "help" in reply.content

    card = sim.card_action("APPROVE", task_id="leave-42", selected={"q1": ["a", "b"]})
    reply = parse(send(card))
    assert reply.msg_type == "update_button" and reply.raw["Button"] == {"ReplaceName": "Approved"}

    # a tampered request is refused by the real server too, with a clear status
    query, body = sim.post(sim.text("x"))
    query["msg_signature"] = "0" * 40
    response = requests.post(url, params=query, data=body, timeout=5)
    assert response.status_code == 403 and "msg_signature" in response.text
    assert (
        requests.post(f"{base}/wecom/callback/nope", params=query, data=body, timeout=5).status_code
        == 404
    )
