"""AI bots over the long connection: our server against WeCom's WebSocket side as the emulator
plays it (`callback.devtools.emulator.aibot_ws`, written from the protocol notes, section 3).
What is asserted is what the member saw, as the emulator records it."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callback import Router, UpdateTemplateCardReply
from callback.app import create_app
from callback.bots.connection import Connections
from callback.bots.link import Link
from callback.bots.uploads import FileReply
from callback.bots.ws_stream import WsStream
from callback.config import from_mapping
from callback.devtools.emulator import (
    DEFAULT_BOT_ID,
    DEFAULT_BOT_SECRET,
    AibotConnectionServer,
    Emulator,
    EmulatorServer,
)
from callback.devtools.emulator.aibot_ws import WsKnobs

USER = "zhangsan"
CARD = {"card_type": "button_interaction", "main_title": {"title": "Deploy?"}, "task_id": "t-1",
        "button_list": [{"text": "Yes", "key": "yes"}]}  # fmt: skip


class Rig:
    """The emulator (HTTP and WebSocket sides) and our servers, all on 127.0.0.1."""

    def __init__(self, tmp_path: Path) -> None:
        self.emulator = Emulator()
        self.http = EmulatorServer(self.emulator).start()
        self.ws = AibotConnectionServer(
            self.emulator, knobs=WsKnobs(response_url_base=self.http.url)
        ).start()
        self.state = f"sqlite:///{tmp_path / 'state.db'}"
        self.apps: list[Any] = []

    @property
    def hub(self) -> Any:
        return self.ws.hub

    def server(self, router: Router, *, secret: str = DEFAULT_BOT_SECRET, lease_s: int = 30,
               wait: bool = True) -> Connections:  # fmt: skip
        """Our app with one bot in connection mode (its Connections; the holder subscribed)."""
        bot = {"mode": "connection", "bot_id": DEFAULT_BOT_ID, "secret": secret,
               "ws_url": self.ws.url}  # fmt: skip
        settings = from_mapping(
            {"bots": {"assistant": bot}, "server": {"state": self.state, "lease_s": lease_s}}
        )
        app = create_app(settings, router=router)
        self.apps.append(app)
        connections: Connections = app.extensions["wecom.connections"]
        if wait:
            assert connections.holders["assistant"].connected.wait(10), "never subscribed"
        return connections

    def message(self, text: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        body = self.ws.callbacks(DEFAULT_BOT_ID, user=USER).text(text, **fields)
        return self.ws.send_message(DEFAULT_BOT_ID, body), body

    def conversation(self) -> Any:
        return self.hub.conversation(DEFAULT_BOT_ID, USER)

    def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"not within {timeout} s")

    def finished_streams(self) -> list[Any]:
        return [s for s in self.conversation().streams if s.finished]

    def stop(self) -> None:
        for app in self.apps:
            app.extensions["wecom.connections"].stop()
            app.extensions["wecom.delivery"].stop()
        self.ws.stop()
        self.http.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path)
    yield rig
    rig.stop()


def _counting(router: Router, pattern: str, answer: Callable[..., Any]) -> list[str]:
    runs: list[str] = []

    @router.text(re.compile(pattern))
    def handler(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(message.content)
        return answer(message, ctx)

    return runs


def test_a_generator_streams_on_the_callbacks_req_id_and_ends_complete(rig: Rig) -> None:
    router = Router()

    def tell(message: Any, ctx: Any) -> Iterator[str]:
        for word in ("Once", " upon", " a", " time."):
            time.sleep(0.2)
            yield word

    runs = _counting(router, "^tell", tell)
    rig.server(router)
    req_id, body = rig.message("tell me")
    stream = rig.until(rig.finished_streams)[0]
    assert stream.content == "Once upon a time." and runs == ["tell me"]
    assert stream.req_id == req_id  # every frame on the callback's req_id
    grown = [s for s in stream.snapshots if s]
    assert len(set(grown)) >= 2 and grown == sorted(grown, key=len)  # it grew, in order
    assert stream.feedback_id == body["msgid"]  # members can rate it
    assert rig.conversation().pushes == []  # nothing needed a proactive send


def test_a_repeated_msgid_runs_once_and_shows_one_answer(rig: Rig) -> None:
    router = Router()
    runs = _counting(router, "^hi", lambda m, c: (time.sleep(0.3), "hello")[1])
    rig.server(router)
    _, body = rig.message("hi")
    rig.ws.send_message(DEFAULT_BOT_ID, body)  # WeCom sent it again (same msgid, new req_id)
    rig.until(rig.finished_streams)
    time.sleep(0.5)
    assert runs == ["hi"]
    assert [s.content for s in rig.conversation().streams] == ["hello"]


def test_enter_chat_gets_its_welcome_and_a_card_click_its_update(rig: Rig) -> None:
    router = Router()
    router.event("enter_chat")(lambda m, c: "Welcome! Ask me anything.")
    router.card_action("yes")(lambda m, c: UpdateTemplateCardReply(
        {**CARD, "button_list": [{"text": "Deploying", "key": "yes"}]}
    ))  # fmt: skip
    rig.server(router)
    callbacks = rig.ws.callbacks(DEFAULT_BOT_ID, user=USER)
    rig.ws.send_event(DEFAULT_BOT_ID, callbacks.enter_chat_event())
    welcome = rig.until(lambda: rig.conversation().welcomes)[0]
    assert welcome.body["text"]["content"] == "Welcome! Ask me anything."
    rig.ws.send_event(DEFAULT_BOT_ID, callbacks.template_card_event(task_id="t-1", event_key="yes"))
    update = rig.until(lambda: rig.conversation().card_updates)[0]
    card = update.body["template_card"]
    assert card["button_list"][0]["text"] == "Deploying" and card["task_id"] == "t-1"
    assert rig.conversation().refused == ()


def test_a_refused_secret_stops_connecting_and_names_the_key(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "wecom.bots.connection")
    connections = rig.server(Router(), secret="wrong", wait=False)
    holder = connections.holders["assistant"]
    assert holder.refused.wait(10)
    time.sleep(2.5)  # a reconnecting client would have come back by now (backoff 1-2 s)
    assert len(rig.hub.connections()) == 1  # one try, never again
    assert any("bots.assistant.secret" in r.getMessage() for r in caplog.records)
    assert all("wrong" not in r.getMessage() for r in caplog.records)  # never the secret


def test_an_evicted_holder_stops_and_its_peers_stay_away(rig: Rig) -> None:
    first = rig.server(Router())
    second = rig.server(Router(), wait=False)  # same store: waits for the lease
    from websockets.sync.client import connect

    with connect(rig.ws.url) as other:  # another deployment subscribes the same bot
        other.send('{"cmd":"aibot_subscribe","headers":{"req_id":"x"},"body":{"bot_id":"'
                   + DEFAULT_BOT_ID + '","secret":"' + DEFAULT_BOT_SECRET + '"}}')  # fmt: skip
        other.recv(timeout=5)
        assert first.holders["assistant"].evicted.wait(10)
        time.sleep(4)  # the survivors' lease would have been taken, and backoff passed
        ours = [c for c in rig.hub.connections(DEFAULT_BOT_ID)]
        assert len(ours) == 2  # the evicted one and the other deployment's: nobody came back
        assert len(rig.hub.evictions(DEFAULT_BOT_ID)) == 1
        assert not second.holders["assistant"].connected.is_set()


def test_the_holder_dies_and_a_peer_takes_over_without_an_eviction(rig: Rig) -> None:
    router = Router()
    runs = _counting(router, "^hi", lambda m, c: "hello")
    first = rig.server(router, lease_s=2)
    second = rig.server(router, lease_s=2, wait=False)
    time.sleep(1)
    assert not second.holders["assistant"].connected.is_set()  # one holder at a time
    dead = first.holders["assistant"]
    dead.stopped.set()  # the process dies: its lease is not given back
    assert dead.link is not None
    dead.link.close()
    assert second.holders["assistant"].connected.wait(10)
    rig.message("hi")
    assert rig.until(rig.finished_streams)[0].content == "hello"
    assert runs == ["hi"] and rig.hub.evictions(DEFAULT_BOT_ID) == []


def test_a_holder_that_stalls_past_its_lease_yields_to_its_peer_without_a_ban(rig: Rig) -> None:
    """The holder's loop stalls (a GC pause, a busy disk) past its lease: the peer takes the
    lease and subscribes, which evicts the stalled one. That is a takeover inside one
    deployment, not another deployment: no hour-long ban, and the bot stays reachable."""
    first = rig.server(Router(), lease_s=2)
    stalled = first.holders["assistant"]
    renew = stalled.store.acquire

    def slow_once(*args: Any) -> bool:
        stalled.store.acquire = renew  # type: ignore[method-assign]
        time.sleep(4)
        return renew(*args)

    stalled.store.acquire = slow_once  # type: ignore[method-assign]
    peer = rig.server(Router(), lease_s=2, wait=False).holders["assistant"]
    assert peer.connected.wait(10), "the peer never took over"
    assert stalled.evicted.wait(5)  # WeCom told the stalled one
    rig.until(lambda: not stalled.evicted.is_set(), timeout=10)
    assert peer.store.get("evicted:assistant") is None
    assert rig.hub.drop_connection(DEFAULT_BOT_ID)  # a network blip: the holder comes back
    rig.until(lambda: rig.hub.active_connection(DEFAULT_BOT_ID), timeout=10)


def test_a_connection_cut_mid_stream_loses_no_answer(rig: Rig) -> None:
    router = Router()
    cut = threading.Event()

    def slow(message: Any, ctx: Any) -> Iterator[str]:
        yield "part one."
        time.sleep(0.6)
        cut.set()
        time.sleep(0.6)
        yield " part two."

    _counting(router, "^slow", slow)
    rig.server(router)
    rig.message("slow")
    assert cut.wait(5)
    assert rig.hub.drop_connection(DEFAULT_BOT_ID)
    push = rig.until(lambda: rig.conversation().pushes, timeout=15)
    assert [p.body["markdown"]["content"] for p in push] == ["part one. part two."]
    time.sleep(1)
    assert len(rig.conversation().pushes) == 1  # exactly once


def test_an_expired_stream_is_finished_by_aibot_send_msg(rig: Rig) -> None:
    router = Router()
    first_frame = threading.Event()

    def long(message: Any, ctx: Any) -> Iterator[str]:
        yield "thinking..."
        first_frame.wait(5)
        rig.emulator.advance(400)  # past the stream's 6 minutes
        time.sleep(0.1)
        yield " the answer."

    _counting(router, "^long", long)
    rig.server(router)
    rig.message("long")
    rig.until(lambda: rig.conversation().streams)
    first_frame.set()
    push = rig.until(lambda: rig.conversation().pushes, timeout=15)
    assert [p.body["markdown"]["content"] for p in push] == ["thinking... the answer."]
    assert any(r.errcode == 846608 for r in rig.conversation().refused)


def test_text_beyond_one_stream_follows_by_aibot_send_msg(rig: Rig) -> None:
    router = Router()
    answer = ("word " * 5000).strip()  # 24999 bytes
    _counting(router, "^long", lambda m, c: answer)
    rig.server(router)
    rig.message("long")
    stream = rig.until(rig.finished_streams)[0]
    push = rig.until(lambda: rig.conversation().pushes)
    assert len(stream.content.encode()) <= 20480
    assert stream.content + push[0].body["markdown"]["content"] == answer


def test_ctx_send_on_a_bot_pushes_to_the_members_chat(rig: Rig) -> None:
    router = Router()

    def noting(message: Any, ctx: Any) -> str:
        ctx.reply("a note first")  # to the chat the message came from
        return "done"

    _counting(router, "^note", noting)
    rig.server(router)
    rig.message("note")
    push = rig.until(lambda: rig.conversation().pushes)
    assert push[0].body["markdown"]["content"] == "a note first"
    assert rig.until(rig.finished_streams)[0].content == "done"


def test_pushes_refused_as_too_fast_wait_and_one_without_an_ack_is_never_sent_twice(
    rig: Rig,
) -> None:
    """846607 on aibot_send_msg waits for the window (pending, not dead); a push WeCom shows
    but never acks may have arrived, so it is kept as a dead letter, not sent again."""
    router = Router()

    def noting(message: Any, ctx: Any) -> str:
        ctx.reply(f"note for {message.content}")
        return "done"

    _counting(router, "^note", noting)
    connections = rig.server(router)
    store = connections.delivery.store
    rig.hub.fail_frames(1, errcode=846607, cmd="aibot_send_msg")
    rig.message("note 1")
    waiting = rig.until(lambda: store.outbox_list(["pending"], 10))
    assert "846607" in waiting[0].error and store.outbox_list(["dead"], 10) == []
    assert rig.conversation().pushes == []
    rig.hub.drop_acks(1, cmd="aibot_send_msg")
    rig.message("note 2")
    dead = rig.until(lambda: store.outbox_list(["dead"], 10), timeout=15)
    assert "may have arrived" in dead[0].error
    pushes = rig.conversation().pushes
    assert [p.body["markdown"]["content"] for p in pushes] == ["note for note 2"]


def test_a_file_answer_is_uploaded_in_chunks_and_shown(rig: Rig) -> None:
    router = Router()
    data = bytes(range(256)) * 3000  # 768000 bytes: two chunks of 512 KiB at most
    _counting(router, "^report", lambda m, c: FileReply(data, "report.bin"))
    rig.server(router)
    rig.message("report")
    shown = rig.until(lambda: rig.conversation().shown("reply", "file"))
    media = {m.media_id: m for m in rig.hub.media(DEFAULT_BOT_ID)}
    uploaded = media[shown[0].body["file"]["media_id"]]
    assert uploaded.data == data and uploaded.filename == "report.bin"
    assert uploaded.md5 == hashlib.md5(data).hexdigest()


def test_a_rate_limited_frame_waits_and_goes_again(rig: Rig) -> None:
    router = Router()
    _counting(router, "^hi", lambda m, c: "hello")
    rig.server(router)
    rig.hub.fail_frames(1, errcode=846607, cmd="aibot_respond_msg")
    rig.message("hi")
    stream = rig.until(rig.finished_streams, timeout=15)[0]
    assert stream.content == "hello" and rig.conversation().pushes == []


def test_an_idle_stream_gets_keepalives_and_one_past_its_limit_is_finished(rig: Rig) -> None:
    """WsStream's timings, shortened: a frame repeats the text before WeCom's idle limit,
    and at the hard limit the stream ends with a notice and the answer follows whole."""
    acks: list[dict[str, Any]] = []
    link = Link(rig.ws.url, acks.append)
    try:
        link.request("aibot_subscribe", {"bot_id": DEFAULT_BOT_ID, "secret": DEFAULT_BOT_SECRET})
        req_id, _ = rig.message("hi")
        followed: list[str] = []
        idle = WsStream(link, req_id, "s-idle", follow_up=followed.append, keepalive_s=0.3)
        idle.append("waiting on the model")
        time.sleep(1.2)
        idle.append(" - done")
        idle.finish()
        snaps = rig.conversation().stream("s-idle").snapshots
        assert snaps.count("waiting on the model") >= 3 and snaps[-1].endswith("done")
        late = WsStream(link, req_id, "s-late", follow_up=followed.append, hard_limit_s=0.5)
        late.append("first half")
        time.sleep(0.8)
        late.append(", second half")
        late.finish()
        ended = rig.conversation().stream("s-late")
        assert ended.finished and ended.content.startswith("first half")
        assert followed == ["first half, second half"]
    finally:
        link.close()


def test_a_silent_handlers_stream_is_cut_inside_wecoms_lifetime(rig: Rig) -> None:
    """Scaled down: WeCom ends a stream 1 s after its first frame; our cut is due at 0.5 s.
    The handler says nothing until 1.5 s, yet the stream is finished in time with the notice
    (not refused with 846608), and the whole answer follows once."""
    knobs = WsKnobs(response_url_base=rig.http.url, stream_lifetime_s=1.0)
    ws = AibotConnectionServer(rig.emulator, knobs=knobs).start()
    link = Link(ws.url, lambda frame: None)
    try:
        link.request("aibot_subscribe", {"bot_id": DEFAULT_BOT_ID, "secret": DEFAULT_BOT_SECRET})
        req_id = ws.send_message(DEFAULT_BOT_ID, ws.callbacks(DEFAULT_BOT_ID, user=USER).text("q"))
        followed: list[str] = []
        stream = WsStream(link, req_id, "s-silent", follow_up=followed.append, hard_limit_s=0.5)
        stream.append("thinking")
        time.sleep(1.5)  # the model says nothing past WeCom's limit
        stream.append(", then the answer")
        stream.finish()
        conversation = ws.hub.conversation(DEFAULT_BOT_ID, USER)
        ended = conversation.stream("s-silent")
        assert ended.finished and ended.content.startswith("thinking")
        assert [r.errcode for r in conversation.refused] == []
        assert followed == ["thinking, then the answer"]
    finally:
        link.close()
        ws.stop()


def _connect(project: Path) -> Any:
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "callback.cli", "connect", "--config", "config.toml"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_wecom_connect_processes_elect_one_holder_and_survive_a_kill_9(
    rig: Rig, tmp_path: Path
) -> None:
    """Two `wecom connect` processes on one state store: one holds the connection; kill -9
    it, and the other takes over once the lease runs out, with no eviction on either side;
    a message is answered once, by the survivor."""
    import os
    import signal

    project = tmp_path / "project"
    project.mkdir()
    (project / "mybot.py").write_text(
        "import os\nfrom callback import Router\nrouter = Router()\n\n"
        "@router.default()\ndef answer(message, ctx):\n    return f'hello from {os.getpid()}'\n"
    )
    (project / "config.toml").write_text(
        f'[server]\nstate = "{rig.state}"\nlease_s = 2\nhandlers = ["mybot"]\n\n'
        f'[bots.assistant]\nmode = "connection"\nbot_id = "{DEFAULT_BOT_ID}"\n'
        f'secret = "{DEFAULT_BOT_SECRET}"\nws_url = "{rig.ws.url}"\n'
    )
    procs = [_connect(project), _connect(project)]
    try:
        rig.until(lambda: rig.hub.active_connection(DEFAULT_BOT_ID), timeout=20)
        rig.message("who holds it?")
        first = rig.until(rig.finished_streams)[0].content
        holder = next(p for p in procs if first == f"hello from {p.pid}")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(5)
        survivor = next(p for p in procs if p is not holder)
        rig.until(lambda: len(rig.hub.connections(DEFAULT_BOT_ID)) == 2, timeout=20)
        rig.until(lambda: rig.hub.active_connection(DEFAULT_BOT_ID), timeout=20)
        rig.message("and now?")
        rig.until(lambda: len(rig.finished_streams()) == 2)
        assert rig.finished_streams()[1].content == f"hello from {survivor.pid}"
        assert rig.hub.evictions(DEFAULT_BOT_ID) == []
        assert survivor.poll() is None  # still holding
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)
