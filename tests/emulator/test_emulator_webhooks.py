"""Group robots (消息推送, wecom-protocol.md §6): webhook/send and webhook/upload_media."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import requests

from callback.devtools.emulator import (
    DEFAULT_WEBHOOK_KEY,
    Emulator,
    EmulatorControl,
    EmulatorServer,
)

KEY = DEFAULT_WEBHOOK_KEY
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOTICE = {
    "card_type": "text_notice",
    "main_title": {"title": "t"},
    "card_action": {"type": 1, "url": "https://example.com"},
}


def send(server: EmulatorServer, body: Any, key: str | None = KEY) -> dict[str, Any]:
    params = {} if key is None else {"key": key}
    kw: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = requests.post(f"{server.url}/cgi-bin/webhook/send", params=params, timeout=5, **kw)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def upload(
    server: EmulatorServer, data: bytes = b"report", key: str = KEY, kind: str = "file"
) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/cgi-bin/webhook/upload_media",
        params={"key": key, "type": kind},
        files={"media": ("report.txt", data)},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def text(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content, **extra}}


def image(data: bytes = PNG, md5: str | None = None) -> dict[str, Any]:
    digest = md5 or hashlib.md5(data).hexdigest()
    return {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode(), "md5": digest}}


def news(count: int, **article: Any) -> dict[str, Any]:
    item = {"title": "t", "url": "https://example.com/a", **article}
    return {"msgtype": "news", "news": {"articles": [dict(item) for _ in range(count)]}}


def codes(server: EmulatorServer, *bodies: Any) -> list[int]:
    return [send(server, body)["errcode"] for body in bodies]


def shown_bodies(emulator: Emulator, key: str = KEY) -> list[Any]:
    return [record.body for record in emulator.webhook_messages(key=key, shown=True)]


def test_text_is_shown_with_its_mentions(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    body = text("hi", mentioned_list=["zhangsan", "@all"], mentioned_mobile_list=["13800001111"])
    assert send(emulator_server, body) == {"errcode": 0, "errmsg": "ok"}
    (record,) = emulator.webhook_messages()
    assert (record.key, record.msgtype, record.body, record.shown) == (KEY, "text", body, True)


def test_text_and_markdown_byte_limits(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    markdown = {"msgtype": "markdown", "markdown": {"content": "中" * 1365 + "a"}}  # 4096 bytes
    too_long_md = {"msgtype": "markdown", "markdown": {"content": "中" * 1366}}  # 4098 bytes
    assert codes(
        emulator_server,
        text("a" * 2048),
        text("中" * 683),  # 2049 bytes
        text(""),
        markdown,
        too_long_md,
        text("x", mentioned_list="zhangsan"),
    ) == [0, 45002, 44004, 0, 45002, 40058]
    assert [r.msgtype for r in emulator.webhook_messages(shown=True)] == ["text", "markdown"]
    assert len(emulator.webhook_messages(shown=False)) == 4


def test_image_must_be_a_small_jpg_or_png_with_its_md5(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    jpg = b"\xff\xd8\xff\xe0" + b"\x01" * 32
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 << 20)
    assert codes(
        emulator_server,
        image(),
        image(jpg),
        image(md5=hashlib.md5(b"other").hexdigest()),
        image(b"GIF89a" + b"\x00" * 8),
        image(big),
        {"msgtype": "image", "image": {"base64": "***", "md5": "0" * 32}},
    ) == [0, 0, 40058, 40004, 40006, 40058]
    assert len(shown_bodies(emulator)) == 2


def test_news_takes_one_to_eight_articles_with_title_and_url(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    assert codes(
        emulator_server,
        news(1),
        news(8),
        news(9),
        news(0),
        news(1, title=""),
        news(1, url=""),
    ) == [0, 0, 45008, 40058, 41016, 40058]


def test_template_card_is_a_notice_card(emulator_server: EmulatorServer) -> None:
    button = {"card_type": "button_interaction", "main_title": {"title": "t"}, "task_id": "t1"}
    assert codes(
        emulator_server,
        {"msgtype": "template_card", "template_card": NOTICE},
        {"msgtype": "template_card", "template_card": button},
        {"msgtype": "voice", "voice": {"media_id": "x"}},
    ) == [0, 42031, 40008]


def test_upload_then_file_message(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    answer = upload(emulator_server)
    assert answer["errcode"] == 0 and answer["type"] == "file"
    media_id = answer["media_id"]
    assert answer["created_at"] == str(int(emulator.now()))
    file_body = {"msgtype": "file", "file": {"media_id": media_id}}
    unknown = {"msgtype": "file", "file": {"media_id": "nope"}}
    assert codes(emulator_server, file_body, unknown) == [0, 40007]
    assert shown_bodies(emulator) == [file_body]
    emulator.add_webhook("other-robot")
    assert send(emulator_server, file_body, key="other-robot")["errcode"] == 40007
    emulator.advance(3 * 24 * 3600)
    assert send(emulator_server, file_body)["errcode"] == 40007


def test_upload_checks_type_and_file(emulator_server: EmulatorServer) -> None:
    assert upload(emulator_server, kind="image")["errcode"] == 40004
    assert upload(emulator_server, data=b"")["errcode"] == 40006
    response = requests.post(
        f"{emulator_server.url}/cgi-bin/webhook/upload_media",
        params={"key": KEY, "type": "file"},
        timeout=5,
    )
    assert response.json()["errcode"] == 41005


def test_the_21st_message_in_a_minute_is_refused_and_not_shown(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    assert codes(emulator_server, *(text(f"m{i}") for i in range(20))) == [0] * 20
    refused = send(emulator_server, text("m20"))
    assert refused["errcode"] == 45009
    assert refused["errmsg"].startswith("api freq out of limit")
    assert [body["text"]["content"] for body in shown_bodies(emulator)] == [
        f"m{i}" for i in range(20)
    ]
    emulator.advance(59)
    assert send(emulator_server, text("still refused"))["errcode"] == 45009
    emulator.advance(1)
    assert send(emulator_server, text("next minute"))["errcode"] == 0
    assert len(shown_bodies(emulator)) == 21


def test_the_window_is_per_robot_and_the_errcode_a_knob(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    emulator.add_webhook("second")
    emulator.set_webhook_policy(per_minute=2, rate_errcode=-1)
    assert codes(emulator_server, text(), text(), text()) == [0, 0, -1]
    assert send(emulator_server, text(), key="second")["errcode"] == 0


def test_unknown_key_is_refused_and_nothing_is_recorded(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    answer = send(emulator_server, text(), key="unknown")
    assert answer["errcode"] == 93000
    assert answer["errmsg"].startswith("invalid webhook url")
    assert send(emulator_server, text(), key=None)["errcode"] == 93000
    assert upload(emulator_server, key="unknown")["errcode"] == 93000
    assert emulator.webhook_messages() == []


def test_bad_json_and_wrong_method(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    assert send(emulator_server, b"{not json")["errcode"] == 40058
    response = requests.get(f"{emulator_server.url}/cgi-bin/webhook/send?key={KEY}", timeout=5)
    assert response.json()["errcode"] == 40058
    assert [r.errcode for r in emulator.webhook_messages()] == [40058]


def test_faults_apply_to_webhook_paths(emulator_server: EmulatorServer, emulator: Emulator) -> None:
    emulator.fail_next(1, errcode=-1, path="webhook/send")
    assert send(emulator_server, text("lost"))["errcode"] == -1
    assert send(emulator_server, text("kept"))["errcode"] == 0
    assert [b["text"]["content"] for b in shown_bodies(emulator)] == ["kept"]
    assert emulator.stats().calls["webhook/send"] == 2


def test_control_api_registers_reads_and_reset_clears(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    control = EmulatorControl(emulator_server.url)
    control.add_webhook("ctl-key", "ops group")
    assert {"key": "ctl-key", "name": "ops group"} in control.webhooks()
    control.set_webhook_policy(per_minute=1)
    assert codes(emulator_server, text("a"), text("b")) == [0, 45009]
    assert send(emulator_server, text("c"), key="ctl-key")["errcode"] == 0
    records = control.webhook_messages(key="ctl-key")
    assert [(r["key"], r["shown"], r["body"]) for r in records] == [("ctl-key", True, text("c"))]
    assert len(control.webhook_messages(shown=False)) == 1
    with pytest.raises(requests.HTTPError):
        control.add_webhook("ctl-key")
    control.reset()
    assert control.webhook_messages() == []
    assert [robot["key"] for robot in control.webhooks()] == [KEY]
    assert codes(emulator_server, text("a"), text("b")) == [0, 0]
