"""AI bots over the callback transport: our server on 127.0.0.1 against WeCom's side as the
emulator plays it (`callback.devtools.aibot`, written from the protocol notes, strict: every
reply is checked against them). What is asserted is what the member saw."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from callback import Router, TextReply, UpdateTemplateCardReply
from callback.app import create_app
from callback.bots.replies import StreamReply, TemplateCardReply
from callback.bots.streams import LATE_NOTICE
from callback.config import from_mapping
from callback.devtools.aibot import AibotSide, MediaHost, Retry
from callback.devtools.aibot.crypto import aes_key
from callback.devtools.emulator import Emulator, EmulatorServer

TOKEN = "AibotTestToken123"
KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
BOT_ID = "aibTESTBOT0001"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
CARD = {"card_type": "text_notice", "main_title": {"title": "Weather"},
        "card_action": {"type": 1, "url": "https://example.com"}}  # fmt: skip


class BotServer:
    """Our app with one bot, served by werkzeug's threaded server on a free port."""

    def __init__(self, router: Router, state: str, **server: Any) -> None:
        bots = {"assistant": {"token": TOKEN, "encoding_aes_key": KEY, "bot_id": BOT_ID}}
        settings = from_mapping({"bots": bots, "server": {"state": state, **server}})
        self.app = create_app(settings, router=router)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}/wecom/bot/assistant"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def receiver(self) -> Any:
        return self.app.extensions["wecom.bots"]

    def stop(self) -> None:
        self.server.shutdown()
        self.app.extensions["wecom.delivery"].stop()


Make = Callable[..., tuple[BotServer, AibotSide]]


@pytest.fixture
def bot(tmp_path: Path, emulator_server: EmulatorServer, emulator: Emulator) -> Iterator[Make]:
    servers: list[BotServer] = []

    def make(
        router: Router, server_settings: dict[str, Any] | None = None, **side: Any
    ) -> tuple[BotServer, AibotSide]:
        server = BotServer(router, f"sqlite:///{tmp_path / 'state.db'}", **(server_settings or {}))
        servers.append(server)
        options = {"refresh_interval_s": 0.1, "window_s": 20.0} | side
        wecom = AibotSide(server.url, TOKEN, KEY, BOT_ID, response_url_base=emulator_server.url,
                          **options)  # fmt: skip
        return server, wecom

    yield make
    for server in servers:
        server.stop()


def test_a_generator_handlers_stream_arrives_complete_and_in_order(bot: Make) -> None:
    router = Router()

    @router.text(re.compile(r"^tell"))
    def tell(message, ctx):  # type: ignore[no-untyped-def]
        for word in ("Once", " upon", " a", " time."):
            time.sleep(0.15)
            yield word

    _, wecom = bot(router)
    started = time.perf_counter()
    seen = wecom.converse(wecom.text("tell me a story"))
    assert seen.ok and seen.finished and seen.final_content == "Once upon a time."
    growing = [s for s in seen.snapshots if s]
    assert growing == sorted(growing, key=len) and len(set(growing)) >= 3  # it grew, in order
    assert all("Once upon a time.".startswith(s) for s in growing)
    assert seen.attempts[0].elapsed_s < 0.5 < time.perf_counter() - started  # answered at once
    assert seen.feedback_id == seen.msgid  # the answer can be rated


def test_a_str_answers_with_a_finished_stream_and_a_retry_gets_the_same_stream(
    bot: Make,
) -> None:
    runs: list[str] = []
    router = Router()

    @router.text("hi")
    def hi(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(message.msg_id)
        time.sleep(0.3)
        return "hello there"

    _, wecom = bot(router)
    seen = wecom.converse(wecom.text("hi"), retry=Retry(attempts=3, after_s=0.1, deliberate=True))
    assert seen.ok and seen.final_content == "hello there"
    assert len(seen.attempts) == 3 and len(runs) == 1  # three deliveries, one run


def test_an_unknown_stream_is_finished_politely(bot: Make) -> None:
    _, wecom = bot(Router())
    message = wecom.text("anything")
    exchange = wecom.post(wecom.refresh(message, "s-never-started"), kind="refresh")
    assert exchange.reply == {
        "msgtype": "stream", "stream": {"id": "s-never-started", "finish": True, "content": ""},
    }  # fmt: skip


def test_a_fourth_message_in_flight_gets_a_polite_answer(bot: Make) -> None:
    release = threading.Event()
    router = Router()

    @router.text(re.compile(r"^q"))
    def slow(message, ctx):  # type: ignore[no-untyped-def]
        release.wait(10)
        return f"answer to {message.content}"

    _, wecom = bot(router)
    firsts = [wecom.post(wecom.text(f"q{n}", user="lisi")) for n in range(4)]
    assert [f.reply["stream"]["finish"] for f in firsts] == [False, False, False, True]
    assert "earlier messages" in firsts[3].reply["stream"]["content"]
    other = wecom.post(wecom.text("q from someone else", user="wangwu"))
    assert other.reply["stream"]["finish"] is False  # the limit is per member
    release.set()


def test_a_long_answer_ends_the_stream_and_continues_by_response_url(
    bot: Make, emulator: Emulator
) -> None:
    answer = "第一段。\n" * 3000  # 39000 bytes: two messages
    router = Router()
    router.add("text", "long", lambda m, ctx: answer)
    _, wecom = bot(router)
    seen = wecom.converse(wecom.text("long"))
    assert seen.ok and seen.finished and len(seen.final_content.encode()) <= 20480
    (rest,) = _wait(lambda: emulator.aibot_responses())
    assert seen.final_content + rest.body["markdown"]["content"] == answer


def test_a_handler_past_the_window_finishes_with_a_notice_then_response_url_once(
    bot: Make, emulator: Emulator
) -> None:
    router = Router()

    @router.text(re.compile(r"^deep"))
    def deep(message, ctx):  # type: ignore[no-untyped-def]
        yield "Thinking"
        time.sleep(2.0)
        yield " deeply: 42."

    server, wecom = bot(router)
    server.receiver.cut_at_s = 1.0  # WeCom's 6 minutes, scaled down
    seen = wecom.converse(wecom.text("deep question"))
    assert seen.ok and seen.finished
    assert seen.final_content.startswith("Thinking") and "full answer follows" in seen.final_content
    (late,) = _wait(lambda: emulator.aibot_responses())
    assert late.body == {"msgtype": "markdown", "markdown": {"content": "Thinking deeply: 42."}}
    time.sleep(0.5)
    assert len(emulator.aibot_responses()) == 1  # once


def test_pictures_and_a_card_come_with_the_final_snapshot_once(bot: Make) -> None:
    router = Router()

    @router.text("weather")
    def weather(message, ctx):  # type: ignore[no-untyped-def]
        yield "Sunny, "
        time.sleep(0.2)
        yield StreamReply("29 degrees.", images=(PNG,))
        yield TemplateCardReply(CARD)

    _, wecom = bot(router)
    seen = wecom.converse(wecom.text("weather"))
    assert seen.ok and seen.final_content == "Sunny, 29 degrees."
    assert seen.images == (PNG,) or [i.data for i in seen.images] == [PNG]
    assert seen.card is not None and seen.card["main_title"] == {"title": "Weather"}


def test_enter_chat_card_event_and_feedback(bot: Make) -> None:
    rated: list[tuple[str, int]] = []
    router = Router()
    router.add("event", "enter_chat", lambda m, ctx: "Welcome!")
    router.add("card_action", "OK", lambda m, ctx: UpdateTemplateCardReply(
        {**CARD, "main_title": {"title": f"Chosen by {m.from_user}"}}))  # fmt: skip
    router.add("event", "feedback_event", lambda m, ctx: rated.append((m.feedback_id, m.rating)))
    _, wecom = bot(router)
    welcome = wecom.enter_chat()
    assert welcome.ok and welcome.reply == {"msgtype": "text", "text": {"content": "Welcome!"}}
    update = wecom.card_event(wecom.template_card_event("task-7", "OK"))
    assert update.ok and update.reply["response_type"] == "update_template_card"
    assert update.reply["template_card"]["task_id"] == "task-7"
    assert update.reply["template_card"]["main_title"] == {"title": "Chosen by zhangsan"}
    feedback = wecom.feedback(wecom.feedback_event("m-123", rating=2, content="more detail"))
    assert feedback.ok and feedback.reply is None
    assert _wait(lambda: rated) == [("m-123", 2)]


def test_a_picture_is_downloaded_and_decrypted_with_the_bots_key(bot: Make) -> None:
    router = Router()

    @router.message("image")
    def look(message, ctx):  # type: ignore[no-untyped-def]
        return hashlib.sha256(ctx.download(message.url)).hexdigest()

    _, wecom = bot(router)
    with MediaHost(aes_key(KEY)) as host:
        url = host.add(PNG, filename="a.png", content_type="image/png")
        seen = wecom.converse(wecom.image(url))
    assert seen.ok and seen.final_content == hashlib.sha256(PNG).hexdigest()


def test_verification_and_refusals(bot: Make) -> None:
    server, wecom = bot(Router())
    assert wecom.verify().ok
    other = AibotSide(server.url, TOKEN, KEY, "aibSOMEONE-ELSE")
    assert other.post(other.text("hi")).status == 403  # another bot's callback
    forged = AibotSide(server.url, "WrongToken", KEY, BOT_ID)
    assert forged.post(forged.text("hi")).status == 403
    query = {"msg_signature": "x", "timestamp": "1", "nonce": "1"}
    assert requests.post(server.url, params=query, data=b"{}").status_code == 400


def _wait(read: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := read()):
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)
    return value


def test_bad_bot_callbacks_get_a_clear_4xx_never_a_500(bot: Make) -> None:
    from callback.devtools.aibot.crypto import AibotCrypto
    from callback.devtools.aibot.envelope import compact

    ran: list[int] = []
    router = Router()
    router.add("default", None, lambda m, ctx: ran.append(1))
    server, wecom = bot(router)
    crypto = AibotCrypto.create(TOKEN, KEY)

    def signed(encrypted: str, timestamp: str = "") -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        return {"msg_signature": crypto.sign(timestamp, "1", encrypted),
                "timestamp": timestamp, "nonce": "1"}  # fmt: skip

    not_json = crypto.encrypt(b"not json")
    stale = crypto.encrypt(compact(wecom.text("hi")))
    cases = [
        ("no query", {}, b"{}", 400),
        ("body not JSON", signed("x"), b"<xml/>", 400),
        ("no encrypt", signed("x"), b'{"other": 1}', 400),
        ("bad signature", {**signed(not_json), "msg_signature": "0" * 40},
         compact({"encrypt": not_json}), 403),
        ("ciphertext garbage", signed("AAAA"), compact({"encrypt": "AAAA"}), 400),
        ("plaintext not JSON", signed(not_json), compact({"encrypt": not_json}), 400),
        ("stale timestamp", signed(stale, str(int(time.time()) - 3600)),
         compact({"encrypt": stale}), 403),
        ("too large", signed("x"), b"{" + b" " * 300_000 + b"}", 400),
    ]  # fmt: skip
    for name, query, body, status in cases:
        response = requests.post(server.url, params=query, data=body, timeout=5)
        assert response.status_code == status, (name, response.status_code, response.text)
        assert "Traceback" not in response.text and len(response.text) < 300, name
    unknown = requests.post(server.url.replace("assistant", "nobody"), params=signed("x"),
                            data=b"{}", timeout=5)  # fmt: skip
    assert unknown.status_code == 404
    forged = requests.get(server.url, params={**signed("x"), "echostr": "y"}, timeout=5)
    assert forged.status_code == 403
    assert ran == []


def test_the_handler_starts_once_the_first_reply_is_written_or_at_once_for_a_test_client(
    bot: Make,
) -> None:
    """Threaded servers close the response once it is written, and the handler starts then
    (it never competes with its own first reply); a test client may never close it, so
    there the handler starts before the answer returns."""
    started: list[float] = []
    router = Router()

    @router.text(re.compile("^hi"))
    def hi(message, ctx):  # type: ignore[no-untyped-def]
        started.append(time.monotonic())
        return "hello"

    server, wecom = bot(router)
    exchange = wecom.post(wecom.text("hi there"))
    assert exchange.reply["stream"]["finish"] is False  # the first reply: the stream, empty
    deadline = time.monotonic() + 5
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started  # it ran, started by the response's close
    sealed = wecom.request(wecom.text("hi again"))
    with server.app.test_client() as client:  # wsgi.multithread is false: no close to wait on
        response = client.post("/wecom/bot/assistant", query_string=sealed.query,
                               data=sealed.body)  # fmt: skip
        assert response.status_code == 200
        deadline = time.monotonic() + 5
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(started) == 2


def test_a_cut_near_the_size_limit_stays_inside_it_and_nothing_is_lost(
    bot: Make, emulator: Emulator
) -> None:
    """The window's cut adds a notice to a text already near 20480 bytes: the stream stays
    within the limit, and what the member did not see follows by response_url (the whole
    answer is too long for one message, so what comes after what they saw)."""
    first, tail = "word " * 4090, "and the tail " * 80  # 20450 bytes, then 1040 more
    router = Router()

    @router.text(re.compile(r"^long"))
    def long(message, ctx):  # type: ignore[no-untyped-def]
        yield first
        time.sleep(2.0)
        yield tail

    server, wecom = bot(router)
    server.receiver.cut_at_s = 1.0  # WeCom's 6 minutes, scaled down
    seen = wecom.converse(wecom.text("long one"))
    assert seen.ok and seen.finished and len(seen.final_content.encode()) <= 20480
    assert seen.final_content.endswith(LATE_NOTICE)
    (late,) = _wait(lambda: emulator.aibot_responses())
    shown = seen.final_content.removesuffix(LATE_NOTICE)
    assert shown + late.body["markdown"]["content"] == first + tail


def test_a_retry_after_the_stream_finished_gets_its_pictures_and_card(bot: Make) -> None:
    router = Router()

    @router.text("weather")
    def weather(message, ctx):  # type: ignore[no-untyped-def]
        yield StreamReply("29 degrees.", images=(PNG,))
        yield TemplateCardReply(CARD)

    server, wecom = bot(router)
    message = wecom.text("weather")
    sid = wecom.post(message).reply["stream"]["id"]
    _wait(lambda: (s := server.receiver.streams.get(sid)) and s.finished)
    retry = wecom.post(message).reply  # WeCom never got our first answer: it asks no more
    assert retry["stream"]["finish"] is True and retry["stream"]["content"] == "29 degrees."
    assert [item["msgtype"] for item in retry["stream"]["msg_item"]] == ["image"]
    assert retry["template_card"]["main_title"] == {"title": "Weather"}


def test_a_card_update_wecom_would_refuse_is_logged_answered_empty_and_run_once(
    bot: Make, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []
    router = Router()

    def clicked(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(message.task_id)
        return UpdateTemplateCardReply({**CARD, "task_id": "not-the-clicked-one"})

    router.add("card_action", "OK", clicked)
    _, wecom = bot(router, server_settings={"lease_s": 1})
    update = wecom.card_event(wecom.template_card_event("task-7", "OK"))
    assert update.status == 200 and update.reply is None
    time.sleep(3)  # past the lease: nothing is left to recover
    assert runs == ["task-7"]
    assert "answer is refused" in caplog.text and "task_id" in caplog.text


def test_a_refresh_that_meets_the_handlers_end_at_the_window_shows_the_final_answer(
    bot: Make, emulator: Emulator
) -> None:
    """The refresh past the window and the handler's end meet: whichever says first how the
    stream ends wins, and the member never reads "the full answer follows" for nothing."""
    release = threading.Event()
    router = Router()

    @router.text(re.compile(r"^q"))
    def answer(message, ctx):  # type: ignore[no-untyped-def]
        yield "part"
        release.wait(10)
        yield " and the rest"

    server, wecom = bot(router)
    streams = server.receiver.streams
    message = wecom.text("q1")
    sid = wecom.post(message).reply["stream"]["id"]
    decide = streams.end

    def end_after_the_handler(stream: str, how: str) -> str:
        if how.startswith("cut:"):  # the refresh: let the handler end in between
            release.set()
            _wait(lambda: streams.store.get(f"stream:{stream}:end"))
        return decide(stream, how)

    streams.end = end_after_the_handler
    server.receiver.cut_at_s = 0.0
    _wait(lambda: (s := streams.get(sid)) and s.content == "part")
    refresh = wecom.post(wecom.refresh(message, sid), kind="refresh").reply
    assert refresh["stream"] == {
        **refresh["stream"],
        "finish": True,
        "content": "part and the rest",
    }
    time.sleep(0.5)
    assert emulator.aibot_responses() == []  # nothing was promised, nothing follows


def test_a_text_reply_answers_a_bot_as_it_answers_an_app(bot: Make) -> None:
    router = Router()
    router.add("text", "hi", lambda m, ctx: TextReply("hello"))
    _, wecom = bot(router)
    seen = wecom.converse(wecom.text("hi"))
    assert seen.ok and seen.final_content == "hello"


def test_a_number_too_large_for_an_int_is_read_as_zero_not_a_500(bot: Make) -> None:
    from callback.devtools.aibot.crypto import AibotCrypto
    from callback.devtools.aibot.envelope import compact

    router = Router()
    router.add("event", "enter_chat", lambda m, ctx: "Welcome!")
    server, _ = bot(router)
    crypto = AibotCrypto.create(TOKEN, KEY)
    plaintext = (b'{"msgid":"x1","aibotid":"' + BOT_ID.encode() + b'","msgtype":"event",'
                 b'"create_time":1e400,"from":{"userid":"u"},'
                 b'"event":{"eventtype":"enter_chat"}}')  # fmt: skip
    encrypted = crypto.encrypt(plaintext)
    timestamp = str(int(time.time()))
    query = {"msg_signature": crypto.sign(timestamp, "1", encrypted), "timestamp": timestamp,
             "nonce": "1"}  # fmt: skip
    response = requests.post(server.url, params=query, data=compact({"encrypt": encrypted}))
    assert response.status_code == 200
