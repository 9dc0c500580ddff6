"""AibotSide.converse over HTTP against stand-in bots: streams, the §2.8 rules, envelopes, retries.

Refreshes come every 20 ms and the window is short, so a whole conversation takes well under 1 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aibot_helpers import BOT_ID, EAK, TOKEN, Raw, Reply, StandInBot, Streamer, stream

from callback.devtools.aibot import AibotSide, Ending, ProtocolViolation, Retry
from callback.devtools.aibot.callbacks import Fields


def make_side(url: str, **kw: Any) -> AibotSide:
    kw.setdefault("refresh_interval_s", 0.02)
    kw.setdefault("window_s", 2.0)
    return AibotSide(url, TOKEN, EAK, BOT_ID, **kw)


@contextmanager
def talk(handler: Any, **bot: Any) -> Iterator[tuple[StandInBot, AibotSide]]:
    side_kw = bot.pop("side", {})
    with StandInBot(handler, **bot) as server, make_side(server.url, **side_kw) as side:
        yield server, side


def image(raw: bytes, md5: str | None = None) -> dict[str, Any]:
    digest = md5 or hashlib.md5(raw).hexdigest()
    return {"msgtype": "image", "image": {"base64": base64.b64encode(raw).decode(), "md5": digest}}


# -- the happy path ---------------------------------------------------------------------------


def test_section_7_1_exchange_records_the_snapshots_in_order() -> None:
    """Message -> first stream (feedback set) -> two refreshes -> finish, as in §7.1."""
    parts = [
        "正在查询天气…",
        "**广州**今日天气：29度，",
        "**广州**今日天气：29度，大部分多云，降雨概率：60%",
    ]

    def weather(plain: dict[str, Any]) -> Reply:
        step = weather.calls  # type: ignore[attr-defined]
        weather.calls += 1  # type: ignore[attr-defined]
        extra = {"feedback": {"id": "fb-5c1b2d7e"}} if step == 0 else {}
        return stream("stream-7f3a9c", parts[step], step == 2, **extra)

    weather.calls = 0  # type: ignore[attr-defined]
    with talk(weather) as (server, side):
        result = side.converse(side.text("广州今天天气怎么样？"))
    assert result.ok, result.violations
    assert result.ending is Ending.FINISHED and result.finished
    assert result.snapshots == tuple(parts)
    assert result.final_content == parts[-1]
    assert result.feedback_id == "fb-5c1b2d7e"
    assert result.stream_id == "stream-7f3a9c"
    assert server.kinds() == ["text", "stream", "stream"]
    refreshes = [plain for plain in server.received if plain["msgtype"] == "stream"]
    for refresh in refreshes:
        assert refresh["stream"] == {"id": "stream-7f3a9c"}
        assert "response_url" not in refresh
        assert refresh["msgid"] != result.msgid
    assert len(result.refreshes) == 2 and len(result.attempts) == 1


def test_snapshots_replace_rather_than_append() -> None:
    """Snapshot semantics: each reply is the whole bubble; a snapshot per reply, even unchanged."""
    replies = iter(
        [stream("s", "1"), stream("s", "123"), stream("s", "123"), stream("s", "x", True)]
    )
    with talk(lambda plain: next(replies)) as (_, side):
        result = side.converse(side.text("hi"))
    assert result.snapshots == ("1", "123", "123", "x")
    assert result.final_content == "x"


def test_one_shot_stream_and_card_need_no_refresh() -> None:
    with talk(lambda plain: stream("s", "done", True)) as (server, side):
        result = side.converse(side.voice("语音转成的文本"))
    assert result.ending is Ending.FINISHED and server.kinds() == ["voice"]
    card = {"card_type": "text_notice", "main_title": {"title": "t"}, "feedback": {"id": "c1"}}
    with talk(lambda plain: {"msgtype": "template_card", "template_card": card}) as (server, side):
        result = side.converse(side.text("card please"))
    assert result.ending is Ending.CARD and result.card == card
    assert result.feedback_id == "c1" and result.snapshots == ()
    assert server.kinds() == ["text"]


@pytest.mark.parametrize("body", [b"", b"success", b"  \n"])
def test_empty_success_and_blank_are_no_reply(body: bytes) -> None:
    with talk(lambda plain: Raw(body)) as (_, side):
        result = side.converse(side.text("hi"))
    assert result.ok and result.ending is Ending.NO_REPLY and result.final_content is None


def test_encrypted_empty_object_is_no_reply() -> None:
    with talk(lambda plain: {}) as (_, side):
        result = side.converse(side.text("hi"))
    assert result.ok and result.ending is Ending.NO_REPLY


def test_msg_item_images_with_finish_are_shown() -> None:
    png = b"\x89PNG\r\n\x1a\n fake"
    replies = iter([stream("s", "a"), stream("s", "ab", True, msg_item=[image(png)])])
    with talk(lambda plain: next(replies)) as (_, side):
        result = side.converse(side.text("draw"))
    assert result.ok and result.images == (png,)


def test_stream_with_template_card_on_a_refresh() -> None:
    card = {"card_type": "button_interaction", "task_id": "t1"}
    replies = iter(
        [
            stream("s", "a"),
            {
                **stream("s", "ab", True),
                "msgtype": "stream_with_template_card",
                "template_card": card,
            },
        ]
    )
    with talk(lambda plain: next(replies)) as (_, side):
        result = side.converse(side.text("hi"))
    assert result.ok and result.card == card and result.final_content == "ab"


# -- rules that catch a broken stand-in --------------------------------------------------------


def broken(replies: list[Reply], **side: Any) -> Any:
    """Converse leniently with a stand-in answering replies in order; the result."""
    answers = iter(replies)
    with talk(lambda plain: next(answers), side={"strict": False, **side}) as (_, aibot):
        return aibot.converse(aibot.text("hi"))


def test_a_refresh_answered_with_another_stream_id() -> None:
    result = broken([stream("s1", "a"), stream("s2", "b"), stream("s1", "c", True)])
    assert result.rules_broken == ("stream.same_id",)
    assert result.violations[0].exchange == 1 and result.violations[0].section == "§2.7"
    assert result.snapshots == ("a", "a", "c")  # the stray reply showed nothing


def test_content_over_20480_bytes_is_caught_and_cut_on_a_character() -> None:
    long = "x" + "天" * 6827  # 20482 bytes: the 6827th 天 would end at byte 20482
    result = broken([stream("s", long, True)])
    assert result.rules_broken == ("stream.content.size",)
    assert result.final_content == "x" + "天" * 6826  # 20479 bytes, no half character
    fits = broken([stream("s", "天" * 6826 + "xx", True)])  # exactly 20480 bytes
    assert fits.ok


def test_msg_item_before_finish() -> None:
    result = broken([stream("s", "a", msg_item=[image(b"img")]), stream("s", "b", True)])
    assert result.rules_broken == ("stream.msg_item.finish",)
    assert result.images == ()


def test_msg_item_count_and_md5() -> None:
    eleven = broken([stream("s", "a", True, msg_item=[image(b"i")] * 11)])
    assert eleven.rules_broken == ("stream.msg_item.count",) and len(eleven.images) == 10
    bad_md5 = broken([stream("s", "a", True, msg_item=[image(b"i", md5="0" * 32)])])
    assert bad_md5.rules_broken == ("stream.msg_item.image",) and bad_md5.images == ()


def test_two_cards_for_one_message() -> None:
    card = {"card_type": "text_notice"}
    both = {"msgtype": "stream_with_template_card", "template_card": card}
    result = broken([{**stream("s", "a"), **both}, {**stream("s", "b", True), **both}])
    assert result.rules_broken == ("card.once",)


def test_a_non_stream_reply_to_a_refresh() -> None:
    card = {"msgtype": "template_card", "template_card": {"card_type": "text_notice"}}
    result = broken([stream("s", "a"), card, None, stream("s", "b", True)])
    assert result.rules_broken == ("reply.type", "reply.type")
    assert result.snapshots == ("a", "a", "a", "b")


def test_a_message_answered_with_a_type_it_does_not_allow() -> None:
    result = broken([{"msgtype": "markdown", "markdown": {"content": "x"}}])
    assert result.rules_broken == ("reply.type",) and result.ending is Ending.BROKEN


def test_a_first_stream_without_id() -> None:
    result = broken([{"msgtype": "stream", "stream": {"finish": False, "content": "a"}}])
    assert result.rules_broken == ("stream.id",) and result.ending is Ending.BROKEN


def test_feedback_id_only_on_the_first_reply_and_at_most_256_bytes() -> None:
    later = broken([stream("s", "a"), stream("s", "b", True, feedback={"id": "late"})])
    assert later.rules_broken == ("feedback.first_only",) and later.feedback_id is None
    same = broken(
        [stream("s", "a", feedback={"id": "f"}), stream("s", "b", True, feedback={"id": "f"})]
    )
    assert same.ok and same.feedback_id == "f"
    long = broken([stream("s", "a", True, feedback={"id": "x" * 257})])
    assert long.rules_broken == ("feedback.size",)


def test_the_window_closes_without_finish() -> None:
    with talk(lambda plain: stream("s", "thinking"), side={"strict": False, "window_s": 0.3}) as (
        server,
        side,
    ):
        result = side.converse(side.text("hi"))
    assert result.ending is Ending.WINDOW_CLOSED and not result.finished
    assert result.rules_broken == ("stream.window",)
    assert result.final_content == "thinking"
    assert result.duration_s >= 0.3
    refreshes = result.refreshes
    assert len(refreshes) >= 3  # a refresh every ~20 ms ...
    assert refreshes[-1].sent_at - result.attempts[0].sent_at < 0.3  # ... none after the window
    assert len(server.received) == 1 + len(refreshes)


def test_polling_stops_at_finish() -> None:
    with talk(Streamer(["a", "b", "c"])) as (server, side):
        result = side.converse(side.text("hi"))
    assert result.ok and server.kinds() == ["text", "stream", "stream"]


# -- strict mode and the envelope --------------------------------------------------------------


def test_strict_mode_raises_naming_the_rule_and_section() -> None:
    replies = iter([stream("s1", "a"), stream("s2", "b")])
    with (
        talk(lambda plain: next(replies)) as (_, side),
        pytest.raises(ProtocolViolation, match=r"stream\.same_id \(§2\.7") as raised,
    ):
        side.converse(side.text("hi"))
    assert isinstance(raised.value, AssertionError)
    assert raised.value.conversation is not None
    assert raised.value.conversation.ending is Ending.ABORTED


def test_wrong_nonce_is_caught_in_both_modes() -> None:
    def wrong(sealed: dict[str, Any]) -> dict[str, Any]:
        return {**sealed, "nonce": "123"}

    with talk(lambda plain: stream("s", "a", True), mangle=wrong, side={"strict": False}) as (
        _,
        side,
    ):
        result = side.converse(side.text("hi"))
    assert result.rules_broken == ("envelope.nonce",)


def test_bad_signature_fails_in_strict_mode_only() -> None:
    def forged(sealed: dict[str, Any]) -> dict[str, Any]:
        return {**sealed, "msgsignature": "0" * 40}

    with (
        talk(lambda plain: stream("s", "a", True), mangle=forged) as (_, side),
        pytest.raises(ProtocolViolation, match=r"envelope\.msgsignature"),
    ):
        side.converse(side.text("hi"))
    with talk(lambda plain: stream("s", "a", True), mangle=forged, side={"strict": False}) as (
        _,
        side,
    ):
        assert side.converse(side.text("hi")).ok


def test_encrypt_only_envelope_is_lenient_only() -> None:
    """LangBot answers {"encrypt": …} alone: fine when lenient, missing fields when strict."""

    def bare(sealed: dict[str, Any]) -> dict[str, Any]:
        return {"encrypt": sealed["encrypt"]}

    with talk(lambda plain: stream("s", "a", True), mangle=bare, side={"strict": False}) as (
        _,
        side,
    ):
        assert side.converse(side.text("hi")).ok
    with (
        talk(lambda plain: stream("s", "a", True), mangle=bare) as (_, side),
        pytest.raises(ProtocolViolation, match="msgsignature is missing"),
    ):
        side.converse(side.text("hi"))


def test_timestamp_may_be_a_string_but_not_anything_else() -> None:
    def as_string(sealed: dict[str, Any]) -> dict[str, Any]:
        return {**sealed, "timestamp": str(sealed["timestamp"])}

    with talk(lambda plain: stream("s", "a", True), mangle=as_string) as (_, side):
        assert side.converse(side.text("hi")).ok

    def as_float(sealed: dict[str, Any]) -> dict[str, Any]:
        return {**sealed, "timestamp": "soon"}

    with talk(lambda plain: stream("s", "a", True), mangle=as_float, side={"strict": False}) as (
        _,
        side,
    ):
        assert "envelope.timestamp" in side.converse(side.text("hi")).rules_broken


def test_http_errors_and_garbage() -> None:
    assert broken([Raw(b"oops", 500)]).rules_broken == ("http.status",)
    assert broken([Raw(b"<xml/>")]).rules_broken == ("envelope.json",)
    assert broken([Raw(b'{"encrypt": "bm90IGEgY2lwaGVy"}')]).rules_broken[-1] == (
        "envelope.decrypt"
    )


# -- retries, dedup, concurrency ---------------------------------------------------------------


def first_text_slow(seconds: float) -> Any:
    """A stand-in delay: the first text callback waits seconds, everything else answers at once."""
    seen: list[str] = []

    def delay(plain: dict[str, Any]) -> float:
        if plain["msgtype"] != "text":
            return 0.0
        seen.append(plain["msgid"])
        return seconds if len(seen) == 1 else 0.0

    return delay


def test_timeout_retry_resends_the_same_msgid() -> None:
    """The first attempt is not answered in time: the same message comes again (§8.1 item 4)."""
    with talk(Streamer(["a", "b"]), delay=first_text_slow(0.5), side={"strict": False}) as (
        server,
        side,
    ):
        result = side.converse(side.text("hi"), retry=Retry(attempts=3, after_s=0.25))
    texts = [plain for plain in server.received if plain["msgtype"] == "text"]
    assert len(texts) == 2 and texts[0] == texts[1]
    assert [a.timed_out for a in result.attempts] == [True, False]
    assert result.attempts[0].query["nonce"] != result.attempts[1].query["nonce"]
    assert result.rules_broken == ("http.timeout",)
    assert result.finished and result.final_content == "ab"


def test_without_retry_a_slow_answer_is_not_resent() -> None:
    with talk(Streamer(["a"]), delay=first_text_slow(0.4), side={"strict": False}) as (
        server,
        side,
    ):
        side.timeout_s = 0.2
        result = side.converse(side.text("hi"))
        threading.Event().wait(0.3)
    assert server.kinds() == ["text"] and result.ending is Ending.NO_ANSWER


def test_retry_gives_up_after_the_attempts() -> None:
    with talk(lambda plain: None, delay=lambda plain: 0.3, side={"strict": False}) as (
        server,
        side,
    ):
        result = side.converse(side.text("hi"), retry=Retry(attempts=3, after_s=0.1))
    assert len(server.received) == 3 and result.ending is Ending.NO_ANSWER
    assert result.rules_broken == ("http.timeout",) * 3


class Deduper:
    """A bot that remembers msgid -> stream and answers a repeat with the current snapshot."""

    def __init__(self, dedup: bool = True, empty_repeat: bool = False) -> None:
        self.dedup = dedup
        self.empty_repeat = empty_repeat
        self.streams: dict[str, str] = {}
        self.steps: dict[str, int] = {}

    def __call__(self, plain: dict[str, Any]) -> Reply:
        if plain["msgtype"] == "stream":
            sid = plain["stream"]["id"]
            self.steps[sid] += 1
            return stream(sid, "x" * self.steps[sid], self.steps[sid] >= 3)
        repeat = plain["msgid"] in self.streams
        if repeat and self.empty_repeat:
            return None
        if repeat and self.dedup:
            sid = self.streams[plain["msgid"]]
        else:
            sid = f"s{len(self.steps)}"
            self.streams[plain["msgid"]] = sid
            self.steps[sid] = 1
        return stream(sid, "x" * self.steps[sid])


def test_deliberate_duplicate_with_dedup_is_fine() -> None:
    with talk(Deduper()) as (server, side):
        result = side.converse(
            side.text("hi"), retry=Retry(attempts=2, after_s=0.05, deliberate=True)
        )
    assert result.ok and result.stream_id == "s0" and result.final_content == "xxx"
    assert [p["msgtype"] for p in server.received][:2] == ["text", "text"]


def test_deliberate_duplicate_without_dedup_starts_a_second_stream() -> None:
    with talk(Deduper(dedup=False), side={"strict": False}) as (_, side):
        result = side.converse(
            side.text("hi"), retry=Retry(attempts=2, after_s=0.05, deliberate=True)
        )
    assert result.rules_broken == ("dedup.same_stream",)
    assert result.stream_id == "s1"


def test_deliberate_duplicate_answered_empty_loses_the_stream() -> None:
    with talk(Deduper(empty_repeat=True), side={"strict": False}) as (_, side):
        result = side.converse(
            side.text("hi"), retry=Retry(attempts=2, after_s=0.05, deliberate=True)
        )
    assert result.rules_broken == ("dedup.lost",)
    assert result.ending is Ending.NO_REPLY and result.final_content is None


def test_many_conversations_at_once() -> None:
    lock = threading.Lock()
    steps: dict[str, int] = {}

    def per_stream(plain: dict[str, Any]) -> Reply:
        sid = plain["stream"]["id"] if plain["msgtype"] == "stream" else plain["msgid"]
        with lock:
            steps[sid] = steps.get(sid, 0) + 1
            step = steps[sid]
        return stream(sid, f"{sid}:{step}", step >= 3)

    with talk(per_stream) as (server, side):
        messages = [side.text(f"q{n}", user=f"user{n}") for n in range(12)]
        results = side.converse_many(messages, max_workers=12)
    assert [r.msgid for r in results] == [m["msgid"] for m in messages]
    for result in results:
        assert result.ok and result.final_content == f"{result.msgid}:3"
    assert len(server.received) == 36


# -- builders --------------------------------------------------------------------------------


def test_builders_follow_the_notes() -> None:
    side = make_side("http://127.0.0.1:9/x")
    group = side.group_text("hello robot")
    assert list(group) == ["msgid", "aibotid", "chatid", "chattype", "from", "msgtype", "text"]
    assert group["chattype"] == "group" and group["text"]["content"] == "@RobotA hello robot"
    assert side.group_text("hello", mention_at_end=True)["text"]["content"] == "hello@RobotA "
    assert side.text("a")["msgid"] != side.text("a")["msgid"]
    assert len(side.text("a")["msgid"]) == 32
    mixed: Fields = side.mixed([("text", "@bot look"), ("image", "https://img")])
    assert mixed["mixed"]["msg_item"][1] == {"msgtype": "image", "image": {"url": "https://img"}}
    quoted = side.text("and this?", quote={"msgtype": "text", "text": {"content": "q"}})
    assert quoted["quote"]["text"]["content"] == "q"
    for built, key in [(side.image("u"), "url"), (side.file("u"), "url"), (side.video("u"), "url")]:
        assert built[built["msgtype"]] == {key: "u"} and built["chattype"] == "single"
    enter = side.enter_chat_event()
    assert "chattype" not in enter and enter["event"] == {"eventtype": "enter_chat"}
    click = side.template_card_event("t1", "ok", selected={"q1": ["one", "two"]})
    body = click["event"]["template_card_event"]
    assert body["selected_items"]["selected_item"][0]["option_ids"]["option_id"] == ["one", "two"]
    feedback = side.feedback_event("fb", rating=2, content="more", reasons=[2, 4])
    assert feedback["event"]["feedback_event"]["inaccurate_reason_list"] == [2, 4]
    assert "response_url" not in feedback and "response_url" not in enter
    assert json.loads(json.dumps(click)) == click


def test_defaults_are_the_documented_choices() -> None:
    """1-s refreshes, the 6-minute window, 5-s callbacks, 1-s verification, strict (README)."""
    side = AibotSide("http://127.0.0.1:9/x", TOKEN, EAK, BOT_ID)
    assert (side.refresh_interval_s, side.window_s, side.timeout_s) == (1.0, 360.0, 5.0)
    assert (side.verify_timeout_s, side.strict, side.response_url_base) == (1.0, True, None)
    assert Retry() == Retry(attempts=3, after_s=5.0, deliberate=False)
