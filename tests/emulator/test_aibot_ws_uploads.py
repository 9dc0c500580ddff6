"""Media upload over the long connection (§3.10) and proactive pushes (§3.8)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ws_helpers import BOT, USER, Dev, card, markdown

from callback.devtools.emulator import AibotConnectionServer

CHUNK = 512 << 10


def init(dev: Dev, data: bytes, chunks: int, **extra: Any) -> dict[str, Any]:
    body = {
        "type": "file",
        "filename": "report.pdf",
        "total_size": len(data),
        "total_chunks": chunks,
        "md5": hashlib.md5(data).hexdigest(),
        **extra,
    }
    return dev.call("aibot_upload_media_init", body)


def chunk(dev: Dev, upload_id: str, index: int, data: bytes) -> int:
    body = {"upload_id": upload_id, "chunk_index": index, "base64_data": base64.b64encode(data)}
    body["base64_data"] = body["base64_data"].decode()  # type: ignore[union-attr]
    return dev.code("aibot_upload_media_chunk", body)


def finish(dev: Dev, upload_id: str) -> dict[str, Any]:
    return dev.call("aibot_upload_media_finish", {"upload_id": upload_id})


def upload(dev: Dev, data: bytes, *, base: int = 0) -> str:
    parts = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    answer = init(dev, data, len(parts))
    assert answer["errcode"] == 0, answer
    upload_id = answer["body"]["upload_id"]
    assert [chunk(dev, upload_id, base + i, part) for i, part in enumerate(parts)] == [0] * len(
        parts
    )
    done = finish(dev, upload_id)
    assert done["errcode"] == 0, done
    return str(done["body"]["media_id"])


def connected(ws: AibotConnectionServer) -> Dev:
    dev = Dev(ws.url)
    assert dev.subscribe()["errcode"] == 0
    return dev


def test_zero_based_upload_then_a_file_reply(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    data = bytes(range(256)) * (CHUNK * 2 // 256) + b"tail"  # 3 chunks
    answer = init(dev, data, 3)
    assert set(answer) == {"headers", "body", "errcode", "errmsg"} and answer["errcode"] == 0
    upload_id = answer["body"]["upload_id"]
    assert [chunk(dev, upload_id, i, data[i * CHUNK : (i + 1) * CHUNK]) for i in (2, 0, 1)] == [
        0,
        0,
        0,
    ]  # out of order is fine
    done = finish(dev, upload_id)
    assert done["errcode"] == 0
    assert done["body"]["type"] == "file" and done["body"]["created_at"] == str(
        int(ws.emulator.now())
    )
    media_id = done["body"]["media_id"]
    (media,) = ws.hub.media(BOT)
    assert (media.media_id, media.data, media.filename) == (media_id, data, "report.pdf")
    req_id = ws.send_message(BOT, ws.callbacks().text("send me the report"))
    reply = {"msgtype": "file", "file": {"media_id": media_id}}
    assert dev.reply(req_id, reply) == 0
    assert ws.hub.conversation(BOT, USER).shown("reply", "file")[0].body == reply
    assert finish(dev, upload_id)["errcode"] == 40058  # the session is used up


def test_one_based_indexes_are_accepted_too(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    media_id = upload(dev, b"x" * (CHUNK + 10), base=1)
    assert ws.hub.media()[0].media_id == media_id
    ws.hub.set_knobs(chunk_index_base="zero")
    answer = init(dev, b"abc", 1)
    assert chunk(dev, answer["body"]["upload_id"], 1, b"abc") == 40058


def test_a_repeated_chunk_is_ignored(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    data = b"a" * CHUNK + b"b" * 5
    upload_id = init(dev, data, 2)["body"]["upload_id"]
    assert chunk(dev, upload_id, 0, data[:CHUNK]) == 0
    assert chunk(dev, upload_id, 0, b"z" * CHUNK) == 0  # a retry: acked, the first one kept
    assert chunk(dev, upload_id, 1, data[CHUNK:]) == 0
    assert finish(dev, upload_id)["errcode"] == 0
    assert ws.hub.media()[0].data == data


def test_md5_is_checked_at_finish(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    upload_id = init(dev, b"hello", 1, md5=hashlib.md5(b"other").hexdigest())["body"]["upload_id"]
    assert chunk(dev, upload_id, 0, b"hello") == 0
    refused = finish(dev, upload_id)
    assert refused["errcode"] == 40058 and "md5" in refused["errmsg"]
    assert ws.hub.media() == []


def test_missing_and_mixed_chunks_and_limits(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    upload_id = init(dev, b"ab", 2)["body"]["upload_id"]
    assert chunk(dev, upload_id, 0, b"a") == 0
    assert chunk(dev, upload_id, 2, b"b") == 40058  # 0-based and 1-based mixed
    assert finish(dev, upload_id)["errcode"] == 40058  # chunk 1 missing
    assert chunk(dev, upload_id, 1, b"b") == 0
    assert finish(dev, upload_id)["errcode"] == 0
    big = init(dev, b"x" * (CHUNK + 1), 2)["body"]["upload_id"]
    assert chunk(dev, big, 0, b"x" * (CHUNK + 1)) == 40006
    assert init(dev, b"x", 101)["errcode"] == 40058
    assert init(dev, b"x", 1, type="pdf")["errcode"] == 40004
    assert init(dev, b"x" * (CHUNK + 1), 1)["errcode"] == 40006
    assert chunk(dev, "unknown", 0, b"x") == 40058


def test_a_session_lasts_30_minutes_and_belongs_to_the_bot(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    upload_id = init(dev, b"abc", 1)["body"]["upload_id"]
    ws.hub.add_bot("aibOTHER", "other-secret")
    other = Dev(ws.url)
    other.subscribe("aibOTHER", "other-secret")
    assert chunk(other, upload_id, 0, b"abc") == 40058
    again = Dev(ws.url)  # a reconnect of the same bot resumes the session
    again.subscribe()
    assert chunk(again, upload_id, 0, b"abc") == 0
    ws.emulator.advance(1800)
    assert finish(again, upload_id)["errcode"] == 40058


def test_uploaded_media_lives_3_days_and_only_for_its_bot(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    media_id = upload(dev, b"%PDF-1.4 tiny")
    push = {"chatid": USER, "msgtype": "file", "file": {"media_id": media_id}}
    assert dev.code("aibot_send_msg", push) == 0
    ws.emulator.advance(3 * 24 * 3600)
    assert dev.code("aibot_send_msg", push) == 40007


def test_uploads_per_minute_are_limited(ws: AibotConnectionServer) -> None:
    ws.hub.set_knobs(uploads_per_minute=2)
    dev = connected(ws)
    assert [init(dev, b"x", 1)["errcode"] for _ in range(3)] == [0, 0, 846607]
    ws.emulator.advance(60)
    assert init(dev, b"x", 1)["errcode"] == 0


def test_pushes_need_no_callback_and_are_checked(ws: AibotConnectionServer) -> None:
    dev = connected(ws)
    push = {"chatid": USER, "chat_type": 1}
    assert [
        dev.code("aibot_send_msg", {**push, **markdown("**主动推送**", feedback={"id": "fb"})}),
        dev.code("aibot_send_msg", {**push, **card(task_id="push_1")}),
        dev.code("aibot_send_msg", {**push, **markdown("a" * 20480)}),
        dev.code("aibot_send_msg", {**push, **markdown("a" * 20481)}),
        dev.code("aibot_send_msg", {**push, **markdown("")}),
        dev.code("aibot_send_msg", {**push, "msgtype": "text", "text": {"content": "x"}}),
        dev.code("aibot_send_msg", {**push, "chat_type": 3, **markdown()}),
        dev.code("aibot_send_msg", markdown()),  # no chatid
        dev.code("aibot_send_msg", {**push, **card(task_id="push_1")}),  # task_id reused
    ] == [0, 0, 0, 45002, 44004, 40008, 40058, 40058, 42033]
    conversation = ws.hub.conversation(BOT, USER, "single")
    assert [p.msgtype for p in conversation.pushes] == ["markdown", "template_card", "markdown"]
    assert len(conversation.refused) == 4 and len(ws.hub.refusals(BOT)) == 6
    assert ws.hub.callbacks() == []
