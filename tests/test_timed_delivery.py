"""TimedDelivery against a stand-in server whose answer to each arriving request the test scripts.

Time is compressed tenfold: a 0.5 s window stands for WeCom's 5 s, and the simulator's clock runs
ten times fast so retries carry new timestamps as they would 5 s apart.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from callback.devtools.emulator import DEFAULT_AGENT_ID, Emulator, EmulatorControl, EmulatorServer
from callback.devtools.simulator import Simulator
from callback.devtools.timed_delivery import TimedDelivery, member_view
from tests.conftest import AES_KEY, CORP_ID, TOKEN

WINDOW = 0.5
SIM = Simulator.create(TOKEN, AES_KEY, CORP_ID, clock=lambda: time.time() * 10)


@dataclass(frozen=True)
class Received:
    at: float
    query: dict[str, str]
    body: bytes
    plaintext: bytes


class StandIn(ThreadingHTTPServer):
    """Answers the n-th arriving POST as script[n] says: (what, after seconds).

    what: "reply" (a passive echo tagged with n), "forged" (that reply, its signature wrong),
    "empty" (200, no body), "500", "never",
    "trickle" (200 headers at once, the reply body in pieces, the last one `after` s late).
    """

    daemon_threads = True

    def __init__(self, script: list[tuple[str, float]], default: tuple[str, float]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script, self.default = script, default
        self.received: list[Received] = []
        self.lock, self.stop = threading.Lock(), threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cb"


def _passive(plain: bytes, n: int) -> bytes:
    doc = ET.fromstring(plain)
    reply = (
        f"<xml><ToUserName><![CDATA[{doc.findtext('FromUserName')}]]></ToUserName>"
        f"<FromUserName><![CDATA[{CORP_ID}]]></FromUserName><CreateTime>1</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[echo#{n}: {doc.findtext('Content')}]]></Content></xml>"
    )
    encrypted = SIM.crypto.encrypt(reply.encode())
    sig = SIM.crypto.sign("1", f"nonce{n}", encrypted)
    return (
        f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{sig}]]>"
        f"</MsgSignature><TimeStamp>1</TimeStamp><Nonce><![CDATA[nonce{n}]]></Nonce></xml>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        plain = SIM.crypto.decrypt(ET.fromstring(body).findtext("Encrypt") or "")
        query = dict(parse_qsl(urlsplit(self.path).query))
        with self.server.lock:
            n = len(self.server.received) + 1
            self.server.received.append(Received(time.monotonic(), query, body, plain))
            what, after = (self.server.script[n - 1 :] or [self.server.default])[0]
        if what == "never":
            self.server.stop.wait(10)
            return
        if what == "trickle":  # every piece inside the socket timeout, the whole too late
            reply = _passive(plain, n)
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            for i in range(5):
                self.wfile.write(reply[i * len(reply) // 5 : (i + 1) * len(reply) // 5])
                self.wfile.flush()
                self.server.stop.wait(after / 4)
            return
        self.server.stop.wait(after)
        if what == "500":
            self._answer(500)
        elif what == "empty":
            self._answer(200)
        elif what == "forged":
            self._answer(
                200, _passive(plain, n).replace(b"Signature><![CDATA[", b"Signature><![CDATA[0")
            )
        else:
            self._answer(200, _passive(plain, n))


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    servers: list[StandIn] = []

    def start(*script: tuple[str, float], default: tuple[str, float] = ("reply", 0)) -> StandIn:
        server = StandIn(list(script), default)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


def td(server: StandIn, **kw: float) -> TimedDelivery:
    return TimedDelivery(server.url, SIM, attempt_timeout_s=WINDOW, **kw)  # type: ignore[arg-type]


def test_reply_in_time_counts(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(("reply", 0.1))
    got = td(server).deliver(SIM.text("hi"))
    assert got.answered_in_time and got.attempts_sent == 1
    assert got.passive is not None and b"echo#1: hi" in got.passive
    assert len(server.received) == 1


def test_late_reply_does_not_count_and_the_retry_is_a_fresh_copy(
    stand_in: Callable[..., StandIn],
) -> None:
    server = stand_in(("reply", 0.8), ("reply", 0))
    got = td(server).deliver(SIM.text("hi"))
    first, second = got.attempts
    assert not first.counted and first.answered_at is None and first.error
    assert second.counted and got.passive is not None and b"echo#2: hi" in got.passive
    assert second.started_at >= first.started_at + WINDOW
    one, two = server.received
    assert one.plaintext == two.plaintext and b"hi" in one.plaintext
    assert one.body != two.body
    assert one.query["nonce"] != two.query["nonce"]
    assert one.query["timestamp"] != two.query["timestamp"]
    assert one.query["msg_signature"] != two.query["msg_signature"]


def test_at_most_three_attempts(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(default=("never", 0))
    begun = time.monotonic()
    got = td(server).deliver(SIM.text("hi"))
    assert got.attempts_sent == 3 and not got.answered_in_time and got.passive is None
    assert time.monotonic() - begun < 3 * WINDOW + 0.5  # abandoned attempts' threads ended
    assert len(server.received) == 3


def test_a_whole_answer_after_the_window_does_not_count(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(("trickle", 0.8), ("empty", 0))
    got = td(server).deliver(SIM.text("hi"))
    assert not got.attempts[0].counted and got.attempts_sent == 2
    assert got.answered_in_time and got.passive is None


def test_non_200_is_retried_without_waiting_for_the_window(
    stand_in: Callable[..., StandIn],
) -> None:
    server = stand_in(("500", 0), ("reply", 0))
    got = td(server).deliver(SIM.text("hi"))
    first, second = got.attempts
    assert first.status == 500 and not first.counted
    assert second.started_at < first.started_at + WINDOW / 2
    assert got.passive is not None and b"echo#2" in got.passive


def test_retry_gap_is_waited_after_a_failure(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(("500", 0), ("reply", 0))
    first, second = td(server, retry_gap_s=0.3).deliver(SIM.text("hi")).attempts
    assert first.answered_at is not None and second.started_at >= first.answered_at + 0.3


def test_empty_200_ends_delivery_with_no_passive_reply(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(("empty", 0))
    got = td(server).deliver(SIM.text("hi"))
    assert got.answered_in_time and got.passive is None and got.attempts_sent == 1
    time.sleep(WINDOW * 1.5)
    assert len(server.received) == 1


def test_a_reply_that_does_not_open_is_received_but_shows_nothing(
    stand_in: Callable[..., StandIn],
) -> None:
    got = td(stand_in(("forged", 0))).deliver(SIM.text("hi"))
    assert got.answered_in_time and got.attempts_sent == 1 and got.passive is None
    assert "does not open" in (got.attempts[0].error or "")


def test_delayed_original_overlaps_the_retry_and_its_late_answer_does_not_count(
    stand_in: Callable[..., StandIn],
) -> None:
    server = stand_in(("reply", 0.3), ("reply", 0))  # the retry arrives first, answers slowly
    got = td(server).deliver(SIM.text("hi"), delay_first_s=0.65)
    original, retry = got.attempts
    assert retry.started_at < original.sent_at < (retry.answered_at or 0)  # in flight together
    assert original.status == 200 and original.reply is not None and not original.counted
    assert retry.counted and got.passive == retry.reply and b"echo#1: hi" in retry.reply
    assert [r.query["nonce"] for r in server.received] == [
        retry.query["nonce"],
        original.query["nonce"],
    ]


def test_an_original_delayed_past_every_window_does_not_count(
    stand_in: Callable[..., StandIn],
) -> None:
    server = stand_in(("never", 0), ("never", 0), ("reply", 0))  # the original arrives last
    got = td(server).deliver(SIM.text("hi"), delay_first_s=3 * WINDOW + 0.1)
    original = got.attempts[0]
    assert original.status == 200 and original.reply is not None and not original.counted
    assert not got.answered_in_time and got.passive is None and got.attempts_sent == 3


def test_burst_and_what_the_member_saw(
    stand_in: Callable[..., StandIn], emulator_server: EmulatorServer
) -> None:
    server = stand_in(("reply", 0.8), default=("reply", 0.2))  # one late, three in time
    begun = time.monotonic()
    got = td(server).deliver_many([SIM.text(f"m{i}") for i in range(4)], concurrency=4)
    assert time.monotonic() - begun < 4 * 0.2 + WINDOW  # they ran at once
    assert [d.answered_in_time for d in got] == [True] * 4
    assert sum(d.attempts_sent for d in got) == 5
    emulator = Emulator()
    app = next(a for a in emulator.apps() if a.agent_id == DEFAULT_AGENT_ID)
    body = {"touser": SIM.user, "msgtype": "text", "agentid": app.agent_id}
    emulator.send(app, body | {"text": {"content": "pushed"}})
    view = member_view(SIM.user, got, emulator)
    assert sorted(t.split(": ")[1] for t in view.passive) == ["m0", "m1", "m2", "m3"]
    assert view.pushed == ("pushed",) and len(view.texts) == 5
    assert member_view("someone-else", got, emulator).texts == ()
    emulator_server.emulator.reset()
    emulator_server.emulator.send(
        app, body | {"markdown": {"content": "md"}, "msgtype": "markdown"}
    )
    control = EmulatorControl(emulator_server.url)
    assert member_view(SIM.user, [], control).pushed == ("md",)
