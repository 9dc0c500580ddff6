"""The receive path through the Flask app: verification, routing, passive replies, errors."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask.testing import FlaskClient

from callback import (
    Article,
    ImageReply,
    NewsReply,
    Router,
    TextReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from callback.app import create_app
from callback.config import from_mapping
from callback.devtools.simulator import Simulator
from callback.inbound.messages import parse
from tests.conftest import AES_KEY, CORP_ID, TOKEN, make_settings

URL = "/wecom/callback/hr"


def client(router: Router, **server: object) -> FlaskClient:
    return create_app(make_settings(**server), router=router).test_client()


def post(c: FlaskClient, sim: Simulator, fields: dict[str, Any], **kw: Any) -> tuple[int, bytes]:
    query, body = sim.post(fields, **kw)
    response = c.post(URL, query_string=query, data=body)
    return response.status_code, sim.open_reply(response.data)


def test_url_verification_answers_bare_echo(sim: Simulator) -> None:
    c = client(Router())
    query, echo = sim.verification()
    response = c.get(URL, query_string=query)
    assert response.status_code == 200
    assert response.data == echo.encode()  # no quotes, newline or JSON


def test_official_verification_vector(vectors: dict[str, Any]) -> None:
    settings = from_mapping(
        {
            "apps": {
                "demo": {
                    "corp_id": vectors["receive_id"],
                    "agent_id": 218,
                    "token": vectors["token"],
                    "encoding_aes_key": vectors["encoding_aes_key"],
                }
            },
            "server": {"max_clock_skew_s": 0},  # the vector's timestamp is from 2014
        }
    )
    c = create_app(settings, router=Router()).test_client()
    v = vectors["url_verification"]
    response = c.get("/wecom/callback/demo?" + v["query_string"])  # percent-encoded, as sent
    assert (response.status_code, response.data) == (200, v["expected_reply"].encode())
    # and the vector's XML and JSON messages are accepted and routed
    seen: list[str] = []
    router = Router()

    @router.text("hello")
    def hello(message, ctx):  # type: ignore[no-untyped-def]
        seen.append(message.from_user)

    c = create_app(settings, router=router).test_client()
    for kind in ("xml_message", "json_message"):
        m = vectors[kind]
        query = {k: m[k] for k in ("msg_signature", "timestamp", "nonce")}
        response = c.post("/wecom/callback/demo", query_string=query, data=m["body"])
        assert (response.status_code, response.data) == (200, b"")
    assert seen == ["mycreate"]  # same MsgId in both vectors: the JSON copy is absorbed as a retry


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("hi", {"MsgType": "text", "Content": "hi"}),
        (TextReply("多字节 ]]> text"), {"MsgType": "text", "Content": "多字节 ]]> text"}),
        (ImageReply("M1"), {"MsgType": "image", "Image": {"MediaId": "M1"}}),
        (VoiceReply("M2"), {"MsgType": "voice", "Voice": {"MediaId": "M2"}}),
        (
            VideoReply("M3", "T", "D"),
            {"MsgType": "video", "Video": {"MediaId": "M3", "Title": "T", "Description": "D"}},
        ),
        (
            NewsReply((Article("A", "d", "http://p", "http://u"), Article("B"))),
            {
                "MsgType": "news",
                "ArticleCount": "2",
                "Articles": {
                    "item": [
                        {"Title": "A", "Description": "d", "PicUrl": "http://p", "Url": "http://u"},
                        {"Title": "B", "Description": "", "PicUrl": "", "Url": ""},
                    ]
                },
            },
        ),
        (
            UpdateButtonReply("Done"),
            {"MsgType": "update_button", "Button": {"ReplaceName": "Done"}},
        ),
        (
            UpdateTemplateCardReply({"card_type": "text_notice", "main_title": {"title": "T"}}),
            {
                "MsgType": "update_template_card",
                "TemplateCard": {"CardType": "text_notice", "MainTitle": {"Title": "T"}},
            },
        ),
    ],
)
def test_passive_replies_swap_roles_and_render(result: object, expected: dict[str, object]) -> None:
    now = 1_718_000_000
    sim = Simulator.create(TOKEN, AES_KEY, CORP_ID, clock=lambda: now - 7)  # sent 7 s ago
    router = Router()
    router.add("default", None, lambda m, ctx: result)
    c = create_app(make_settings(), router=router, clock=lambda: float(now)).test_client()
    status, plain = post(c, sim, sim.text("x", user="lisi"))
    assert status == 200
    from callback.inbound import xmlcodec

    fields = xmlcodec.parse(plain)["xml"]
    assert fields["ToUserName"] == "lisi" and fields["FromUserName"] == CORP_ID
    assert fields["CreateTime"] == str(now)  # our clock when answering, not the message's time
    for key, value in expected.items():
        assert fields[key] == value


def test_none_and_empty_string_answer_empty_200(sim: Simulator) -> None:
    for result in (None, ""):
        router = Router()
        router.add("default", None, lambda m, ctx, r=result: r)
        assert post(client(router), sim, sim.text("x")) == (200, b"")


def test_json_callback_gets_json_reply(sim: Simulator) -> None:
    router = Router()
    router.add("default", None, lambda m, ctx: f"got {m.content}")
    c = client(router)
    query, body = sim.post(sim.text("json!"), as_json=True)
    response = c.post(URL, query_string=query, data=body)
    assert response.status_code == 200 and response.data.startswith(b'{"encrypt"')
    reply = parse(sim.open_reply(response.data))
    assert reply.raw["Content"] == "got json!"
    assert (reply.to_user, reply.from_user) == ("zhangsan", CORP_ID)


CLICK_FIELDS = (
    f"<ToUserName><![CDATA[{CORP_ID}]]></ToUserName>",
    "<FromUserName><![CDATA[zhangsan]]></FromUserName>",
    "<CreateTime>1718000105</CreateTime>",
    "<MsgType><![CDATA[event]]></MsgType>",
    "<Event><![CDATA[click]]></Event>",
    "<EventKey><![CDATA[MENU_HELP]]></EventKey>",
    "<AgentID>1000002</AgentID>",
)
FLAT = "<xml>" + "".join(CLICK_FIELDS) + "</xml>"
INDENTED = "<xml>\n" + "".join(f"    {line}\n" for line in CLICK_FIELDS) + "</xml>"
CLICK_JSON = json.dumps(
    {
        "ToUserName": CORP_ID,
        "FromUserName": "zhangsan",
        "CreateTime": 1718000105,
        "MsgType": "event",
        "Event": "click",
        "EventKey": "MENU_HELP",
        "AgentID": 1000002,
    }
)
BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    "plaintext",
    [
        BOM + FLAT.encode(),
        INDENTED.encode(),
        FLAT.replace("</xml>", "</xml >").encode(),
        FLAT.replace("</EventKey>", "</EventKey >").encode(),
        b"\n\t " + FLAT.encode() + b"\r\n",
        BOM + INDENTED.replace("</xml>", "</xml >").replace("\n", "\r\n").encode(),
        BOM + CLICK_JSON.encode(),
    ],
    ids=["bom", "indented", "space-in-root-end-tag", "space-in-end-tag", "surrounding-space",
         "bom-indented-crlf-space", "bom-json"],
)  # fmt: skip
def test_lenient_formatting_routes_the_same(sim: Simulator, plaintext: bytes) -> None:
    """A byte order mark, indentation and `</xml >`, as other projects' samples have them."""
    seen: list[tuple[str, str]] = []
    router = Router()

    @router.click("MENU_HELP")
    def help_click(message, ctx):  # type: ignore[no-untyped-def]
        seen.append((message.from_user, message.event_key))
        return "help"

    status, reply = post(client(router), sim, plaintext)
    assert status == 200 and parse(reply).raw["Content"] == "help"
    assert seen == [("zhangsan", "MENU_HELP")]


@pytest.mark.parametrize("as_json", [False, True], ids=["xml", "json"])
def test_an_envelope_with_a_byte_order_mark_is_read(sim: Simulator, as_json: bool) -> None:
    router = Router()
    router.add("default", None, lambda m, ctx: "ok")
    query, body = sim.post(sim.text("x"), as_json=as_json)
    response = client(router).post(URL, query_string=query, data=BOM + body)
    assert response.status_code == 200
    assert parse(sim.open_reply(response.data)).raw["Content"] == "ok"


def test_handler_error_is_logged_with_key_and_type(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()

    @router.click("BOOM")
    def boom(message, ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("database down")

    fields = sim.click("BOOM")
    with caplog.at_level(logging.ERROR):
        assert post(client(router), sim, fields) == (200, b"")
    (record,) = [r for r in caplog.records if r.name == "wecom.delivery"]
    assert "type=click" in record.getMessage() and "key=hr:sha1:" in record.getMessage()
    assert "boom" in record.getMessage() and record.exc_info is not None


def test_handler_returning_wrong_type_is_a_logged_error(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()
    router.add("default", None, lambda m, ctx: 42)
    assert post(client(router), sim, sim.text("x")) == (200, b"")
    assert "expected str, Reply or None" in caplog.text


def test_context_carries_app_match_and_message(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, object] = {}
    router = Router()

    @router.text(re.compile(r"^order (\d+)$"))
    def order(message, ctx):  # type: ignore[no-untyped-def]
        seen.update(app=ctx.app, number=ctx.match[1], same=ctx.message is message)
        ctx.log.info("handled")

    with caplog.at_level(logging.INFO):
        post(client(router), sim, sim.text("order 7"))
    assert seen == {"app": "hr", "number": "7", "same": True}
    assert any(r.getMessage().startswith("[hr hr:msg:") for r in caplog.records)


def test_several_apps_on_one_server() -> None:
    other_key = "B" * 43
    settings = from_mapping(
        {
            "apps": {
                "hr": {
                    "corp_id": CORP_ID,
                    "agent_id": 1,
                    "token": "t1",
                    "encoding_aes_key": "A" * 43,
                },
                "ops": {
                    "corp_id": CORP_ID,
                    "agent_id": 2,
                    "token": "t2",
                    "encoding_aes_key": other_key,
                },
            }
        }
    )
    router = Router()
    router.add("default", None, lambda m, ctx: ctx.app)
    c = create_app(settings, router=router).test_client()
    for app, token, key in (("hr", "t1", "A" * 43), ("ops", "t2", other_key)):
        sim = Simulator.create(token, key, CORP_ID)
        query, body = sim.post(sim.text("which?"))
        response = c.post(f"/wecom/callback/{app}", query_string=query, data=body)
        assert parse(sim.open_reply(response.data)).raw["Content"] == app
        # a callback signed for one app is refused by the other
        wrong = "ops" if app == "hr" else "hr"
        assert c.post(f"/wecom/callback/{wrong}", query_string=query, data=body).status_code == 403


def test_custom_prefix_and_healthz(sim: Simulator) -> None:
    c = client(Router(), callback_prefix="/hooks/wecom/")
    query, echo = sim.verification()
    assert c.get("/hooks/wecom/hr", query_string=query).data == echo.encode()
    assert c.get(URL, query_string=query).status_code == 404
    assert c.get("/healthz").status_code == 200


def test_query_string_helper_encodes_once(sim: Simulator) -> None:
    query, _ = sim.verification()
    assert dict(parse_qsl(sim.query_string(query))) == query


def test_other_methods_are_405_with_allow(sim: Simulator) -> None:
    c = client(Router())
    for method in ("PUT", "DELETE", "HEAD"):
        response = c.open(URL, method=method)
        assert response.status_code == 405 and response.headers["Allow"] == "GET, POST"
