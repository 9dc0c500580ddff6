"""The AI-bot guarantees with real processes on 127.0.0.1: gunicorn with 2 workers of our
threaded worker, the WeCom emulator (its response_url), and WeCom's side of the bot as the
emulator plays it (`callback.devtools.aibot`: its own crypto, written from the protocol notes,
so it also checks that our replies decrypt and verify independently)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callback.devtools.aibot import AibotSide, Conversation, Retry
from callback.devtools.emulator import EmulatorServer
from tests.conftest import ROOT, eventually, free_port, kill_group, stop_group, wait_http

TOKEN = "AibotTestToken123"
KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
BOT_ID = "aibTESTBOT0001"
STORY = "".join(f"word{n} " for n in range(12))


class BotCluster:
    """gunicorn wsgi:app, 2 workers of callback.serve.ThreadWorker; its access log names the
    worker (pid) that answered each request."""

    def __init__(self, tmp: Path, lease_s: int = 30, **env: str) -> None:
        self.tmp, self.env = tmp, env
        self.log = tmp / "handler.log"
        self.log.touch()
        self.access = tmp / "access.log"
        self.config = tmp / "config.toml"
        self.config.write_text(
            f'[server]\nstate = "sqlite:///{tmp / "state.db"}"\nhandlers = ["proof_handlers"]\n'
            f"lease_s = {lease_s}\n\n[bots.assistant]\n"
            f'token = "{TOKEN}"\nencoding_aes_key = "{KEY}"\nbot_id = "{BOT_ID}"\n',
            encoding="utf-8",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/wecom/bot/assistant"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | self.env | {
            "WECOM_CONFIG": str(self.config),
            "PROOF_LOG": str(self.log),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "proof"), str(ROOT)]),
        }  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "2", "--worker-class", "callback.serve.ThreadWorker",
             "--threads", "32", "--access-logfile", str(self.access),
             "--access-logformat", "%(p)s %(m)s %(U)s %(s)s", "--graceful-timeout", "2"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc)

    def kill_all(self) -> None:
        """kill -9 the master and every worker at once (the whole process group)."""
        assert self.proc is not None
        kill_group(self.proc)

    def stop(self) -> None:
        stop_group(self.proc)

    def lines(self, prefix: str) -> list[str]:
        return [ln for ln in self.log.read_text().splitlines() if ln.startswith(prefix)]

    def workers_that_answered(self) -> Counter[str]:
        """pid -> how many bot POSTs it answered (the first reply and the refreshes)."""
        found = (ln.split() for ln in self.access.read_text().splitlines())
        return Counter(
            f[0] for f in found if len(f) == 4 and f[1] == "POST" and "/wecom/bot/" in f[2]
        )


@pytest.fixture
def cluster(tmp_path: Path, emulator_server: EmulatorServer) -> Iterator[Callable[..., BotCluster]]:
    emulator_server.emulator.reset()
    made: list[BotCluster] = []

    def make(**kw: Any) -> BotCluster:
        c = BotCluster(tmp_path, **kw)
        c.start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def side(server: BotCluster, emulator_server: EmulatorServer, **kw: Any) -> AibotSide:
    options = {"refresh_interval_s": 0.2, "window_s": 30.0} | kw
    return AibotSide(server.url, TOKEN, KEY, BOT_ID, response_url_base=emulator_server.url,
                     **options)  # fmt: skip


def grew_in_order(seen: Conversation) -> bool:
    texts = [s for s in seen.snapshots if s]
    return all(STORY.startswith(t) for t in texts) and texts == sorted(texts, key=len)


def test_a_stream_arrives_complete_in_order_with_refreshes_on_both_workers(
    cluster: Callable[..., BotCluster], emulator_server: EmulatorServer
) -> None:
    server = cluster()
    wecom = side(server, emulator_server, keep_alive=False)  # any worker may get any request
    stories = [wecom.text(f"story {n}", user=f"member{n}") for n in range(4)]
    seen = wecom.converse_many(stories, max_workers=4)
    for conversation in seen:
        assert conversation.ok and conversation.final_content == STORY, conversation.violations
        assert grew_in_order(conversation) and len(set(conversation.snapshots)) >= 4
    answered = server.workers_that_answered()
    assert len(answered) == 2 and min(answered.values()) >= 5, answered  # both took refreshes
    assert len(server.lines("story start")) == 4


def test_a_retry_during_the_stream_gets_the_same_stream_and_the_handler_runs_once(
    cluster: Callable[..., BotCluster], emulator_server: EmulatorServer
) -> None:
    server = cluster()
    wecom = side(server, emulator_server)
    retry = Retry(attempts=3, after_s=0.5, deliberate=True)  # resent while the stream grows
    seen = wecom.converse(wecom.text("story with retries"), retry=retry)
    assert seen.ok and seen.final_content == STORY and len(seen.attempts) == 3
    assert len({a.reply["stream"]["id"] for a in seen.attempts if a.reply}) == 1
    assert len(server.lines("story start")) == 1


def test_kill_9_mid_stream_then_restart_ends_in_one_complete_answer(
    cluster: Callable[..., BotCluster], emulator_server: EmulatorServer
) -> None:
    server = cluster(lease_s=2)
    wecom = side(server, emulator_server, strict=False, window_s=40.0)
    results: list[Conversation] = []
    member = threading.Thread(target=lambda: results.append(wecom.converse(wecom.text("story"))))
    member.start()
    eventually(lambda: len(server.lines("story start")) == 1, 10)
    time.sleep(1.2)  # a few words out
    server.kill_all()  # every server process, mid-stream
    assert server.lines("story end") == []
    server.start()  # the same state file: recovery re-runs the handler after its lease
    member.join()
    (seen,) = results
    assert seen.finished and seen.final_content == STORY  # complete
    assert grew_in_order(seen)  # one message, never shorter than what the member had seen
    assert len({s for s in seen.snapshots if s}) >= 3
    assert len(server.lines("story start")) == 2 and len(server.lines("story end")) == 1


def test_a_handler_past_the_window_finishes_by_response_url_once(
    cluster: Callable[..., BotCluster], emulator_server: EmulatorServer
) -> None:
    server = cluster(WECOM_BOT_CUT_AT_S="1.0", STORY_WORD_S="0.3")  # 6 minutes, scaled down
    wecom = side(server, emulator_server)
    seen = wecom.converse(wecom.text("story that takes long"))
    assert seen.ok and seen.finished and "full answer follows" in seen.final_content
    assert STORY.startswith(seen.final_content.split("\n")[0])
    emulator = emulator_server.emulator
    eventually(lambda: len(emulator.aibot_responses()) == 1, 10)
    time.sleep(1.0)
    (late,) = emulator.aibot_responses()
    assert late.body == {"msgtype": "markdown", "markdown": {"content": STORY}}


def test_our_replies_open_with_the_independent_crypto_and_the_vectors_hold() -> None:
    """§12 B.1/7.1: our encryption (receive id "") and WeCom's side's reproduce the vector."""
    from callback.devtools.aibot.crypto import AibotCrypto
    from callback.inbound.crypto import MsgCrypto

    ours = MsgCrypto.create(TOKEN, KEY, "")
    theirs = AibotCrypto.create(TOKEN, KEY)
    step2 = (b'{"msgtype":"stream","stream":{"id":"stream-7f3a9c","finish":false,'
             b'"content":"\xe6\xad\xa3\xe5\x9c\xa8\xe6\x9f\xa5\xe8\xaf\xa2\xe5\xa4\xa9\xe6\xb0\x94'
             b'\xe2\x80\xa6","feedback":{"id":"fb-5c1b2d7e"}}}')  # fmt: skip
    fixed = dataclasses.replace(ours, random_prefix=lambda: b"R1r2R3r4R5r6R7r8")
    encrypted = fixed.encrypt(step2)
    assert encrypted.startswith("np1XtR0oQG6SfY7EgO/tLkr3Mi4thM1oZMmnm3nR+x66qwjot5QnJ/9ERmgM")
    assert theirs.decrypt(encrypted).message == step2
    assert (
        ours.sign("1765000100", "510001", encrypted) == "b283536d4a8c715ecd89cdfbaeac25eeb6016698"
    )
