"""The send client against the WeCom emulator over HTTP: results, errors, retries, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from callback.config import AppSettings, from_mapping
from callback.devtools.emulator import (
    DEFAULT_CORP_ID,
    DEFAULT_MINIPROGRAM_APPID,
    DEFAULT_MINIPROGRAM_SECRET,
    DEFAULT_SECRET,
    Emulator,
    EmulatorServer,
)
from callback.errors import ApiError, NoAnswer, RateLimited, Unreachable, ValidationError
from callback.outbound import (
    Image,
    MiniProgramNotice,
    Recipients,
    TemplateCard,
    Text,
    UpdateTemplateCard,
)
from callback.outbound.client import RetryPolicy, SendResult, WecomClient
from callback.outbound.tokens import TokenCache
from callback.store import MemoryStore, SqliteStore
from tests.conftest import free_port
from tests.send_burst import burst


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def apps(base_url: str, secret: str = DEFAULT_SECRET) -> dict[str, AppSettings]:
    return dict(
        from_mapping(
            {
                "apps": {
                    "hr": {
                        "corp_id": DEFAULT_CORP_ID,
                        "agent_id": 1000002,
                        "secret": secret,
                        "api_base_url": base_url,
                    },
                    "notices": {
                        "corp_id": DEFAULT_CORP_ID,
                        "agent_id": 1000003,
                        "secret": DEFAULT_MINIPROGRAM_SECRET,
                        "api_base_url": base_url,
                    },
                }
            }
        ).apps
    )


@pytest.fixture
def client(emulator_server: EmulatorServer, emulator: Emulator) -> WecomClient:
    fast = RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05)
    return WecomClient(apps(emulator_server.url), MemoryStore(), retry=fast)


def gettokens(emulator: Emulator) -> int:
    return sum(emulator.stats().gettoken.values())


NOTICE = MiniProgramNotice(
    appid=DEFAULT_MINIPROGRAM_APPID,
    page="pages/room?id=402",
    title="会议室预订成功通知",
    description="4月27日 16:16",
    items=[("会议室", "402"), ("会议地点", "广州TIT-402会议室")],
    emphasis_first_item=True,
)


def test_send_text_and_typed_result(client: WecomClient, emulator: Emulator) -> None:
    result = client.send("hr", Text("hello"), ["zhangsan", "invalid_bob", "unlicensed_amy"])
    assert isinstance(result, SendResult) and result.msgid
    assert result.invalid_users == ("invalid_bob",)
    assert result.unlicensed_users == ("unlicensed_amy",)
    (record,) = emulator.messages()
    assert record.body["text"] == {"content": "hello"} and record.body["agentid"] == 1000002
    assert record.body["enable_duplicate_check"] == 1


def test_miniprogram_notice_needs_the_miniprogram_app(
    client: WecomClient, emulator: Emulator
) -> None:
    result = client.send("notices", NOTICE, "zhangsan|lisi")
    (record,) = emulator.messages()
    assert record.msgtype == "miniprogram_notice" and result.msgid
    assert "agentid" not in record.body
    assert [i["key"] for i in record.body["miniprogram_notice"]["content_item"]] == [
        "会议室",
        "会议地点",
    ]
    with pytest.raises(ApiError) as err:
        client.send("hr", NOTICE, ["zhangsan"])
    assert err.value.errcode == 48002 and "mini-program application" in err.value.hint


def test_validation_fails_before_any_request(client: WecomClient, emulator: Emulator) -> None:
    with pytest.raises(ValidationError, match=r"miniprogram_notice\.title.*4 to 12"):
        client.send("notices", MiniProgramNotice(appid="wx1", title="短"), ["u"])
    with pytest.raises(ValidationError):
        client.send("notices", NOTICE, Recipients.all())
    assert emulator.stats().calls == {}


def test_all_recipients_invalid_is_81013(client: WecomClient) -> None:
    with pytest.raises(ApiError) as err:
        client.send("hr", Text("x"), ["invalid_a", "invalid_b"])
    assert err.value.errcode == 81013 and "visible range" in str(err.value)


def test_long_text_is_split_not_truncated(client: WecomClient, emulator: Emulator) -> None:
    text = "第" * 1500  # 4500 bytes: two identical parts, which WeCom's check must not merge
    result = client.send("hr", Text(text), ["zhangsan"])
    records = emulator.messages()
    assert len(records) == 3 and len(result.msgids) == 3
    assert "".join(r.body["text"]["content"] for r in records) == text
    assert [r.body["enable_duplicate_check"] for r in records] == [1, 0, 1]


def test_deliberate_repeat_is_delivered(client: WecomClient, emulator: Emulator) -> None:
    for _ in range(2):
        client.send("hr", Text("Your build failed"), ["zhangsan"])
    assert len(emulator.messages()) == 2  # WeCom's duplicate check would have dropped one
    first = client.send("hr", Text("reply"), ["lisi"], idempotency_key="cb-1")
    again = client.send("hr", Text("reply"), ["lisi"], idempotency_key="cb-1")
    assert first.msgid == again.msgid and len(emulator.messages()) == 3  # one logical send


def test_token_cached_then_replayed_once_after_revocation(
    client: WecomClient, emulator: Emulator
) -> None:
    for n in range(5):
        client.send("hr", Text(f"m{n}"), ["zhangsan"])
    assert gettokens(emulator) == 1
    emulator.revoke_tokens()
    client.send("hr", Text("after revoke"), ["zhangsan"])
    assert gettokens(emulator) == 2
    assert len(emulator.messages()) == 6
    emulator.advance(7300)  # expired by WeCom's clock, still fresh in ours: 42001
    client.send("hr", Text("after expiry"), ["zhangsan"])
    assert gettokens(emulator) == 3


def test_wrong_secret_is_a_config_error_not_a_loop(
    emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    client = WecomClient(apps(emulator_server.url, secret="wrong"), MemoryStore())
    for _ in range(2):
        with pytest.raises(ApiError) as err:
            client.send("hr", Text("x"), ["zhangsan"])
        assert err.value.errcode == 40001 and "apps.NAME.secret" in err.value.hint
    assert emulator.stats().calls["gettoken"] == 1  # remembered: never a loop of wrong secrets
    assert emulator.stats().calls.get("message/send", 0) == 0


@pytest.mark.parametrize(
    "fault", [{"errcode": -1}, {"errcode": 45009}, {"errcode": 45033}, {"http_status": 502}]
)
def test_transient_failures_are_retried_with_duplicate_check(
    client: WecomClient, emulator: Emulator, fault: dict[str, Any]
) -> None:
    client.send("hr", Text("warm token"), ["zhangsan"])
    emulator.fail_next(2, path="message/send", **fault)
    result = client.send("hr", Text("retried"), ["zhangsan"])
    assert result.msgid
    assert [r.body["text"]["content"] for r in emulator.messages()] == ["warm token", "retried"]


def test_no_answer_without_duplicate_check_is_not_sent_again(
    client: WecomClient, emulator: Emulator
) -> None:
    client.send("hr", Text("warm"), ["zhangsan"])
    emulator.fail_next(1, http_status=502, path="message/send")  # a gateway: maybe delivered
    with pytest.raises(NoAnswer, match="may have been delivered") as err:
        client.send("hr", Text("once"), ["zhangsan"], duplicate_check=False)
    assert not err.value.replayable
    assert emulator.stats().calls["message/send"] == 2


def test_a_busy_answer_is_retried_even_without_duplicate_check(
    client: WecomClient, emulator: Emulator
) -> None:
    client.send("hr", Text("warm"), ["zhangsan"])
    emulator.fail_next(2, errcode=-1, path="message/send")  # WeCom answered: it did nothing
    client.send("hr", Text("busy then sent"), ["zhangsan"], duplicate_check=False)
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["warm", "busy then sent"]
    assert emulator.stats().calls["message/send"] == 4


def test_retries_are_capped(client: WecomClient, emulator: Emulator) -> None:
    client.send("hr", Text("warm"), ["zhangsan"])
    emulator.fail_next(10, http_status=503, path="message/send")
    with pytest.raises(NoAnswer, match="HTTP 503") as err:
        client.send("hr", Text("never"), ["zhangsan"])
    assert err.value.replayable  # sent with the duplicate check: the outbox may try again
    assert emulator.stats().calls["message/send"] == 1 + 4


def test_no_connection_is_unreachable_and_tried_again(tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    slept: list[float] = []
    fast = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05)
    client = WecomClient(apps(f"http://127.0.0.1:{port}"), MemoryStore(), retry=fast,
                         sleep=slept.append)  # fmt: skip
    with pytest.raises(Unreachable, match="no connection"):
        client.send("hr", Text("x"), ["zhangsan"], duplicate_check=False)
    assert len(slept) == 2  # three tries: the request never left, so a repeat is harmless


def test_member_rate_window_raises_instead_of_silent_drop(
    client: WecomClient, emulator: Emulator
) -> None:
    for n in range(30):
        client.send("hr", Text(f"n{n}"), ["zhangsan"], duplicate_check=False)
    with pytest.raises(RateLimited) as err:
        client.send("hr", Text("31st"), ["zhangsan", "lisi"])
    assert 0 < err.value.retry_after <= 60 and "may go in" in str(err.value)
    client.send("hr", Text("lisi is fine"), ["lisi"])
    assert emulator.stats().dropped == 0 and len(emulator.messages()) == 31


def test_card_update_recall_media_and_ips(client: WecomClient, emulator: Emulator) -> None:
    card = TemplateCard.button_interaction(
        "task-1", "Leave request", [("Approve", "APPROVE"), ("Reject", "REJECT")]
    )
    sent = client.send("hr", card, ["zhangsan"])
    assert sent.response_code
    update = UpdateTemplateCard(sent.response_code, replace_name="Done", users=["zhangsan"])
    client.update_template_card("hr", update)
    with pytest.raises(ApiError) as err:
        client.update_template_card("hr", update)  # single use
    assert err.value.errcode == 60140
    client.recall("hr", sent.msgid)
    assert emulator.messages()[0].recalled
    media_id = client.upload_media("hr", "image", "a.png", b"\x89PNG fake")
    client.send("hr", Image(media_id), ["u1"])
    assert client.callback_ips("hr")


class _SlowTokenSession(requests.Session):
    """WeCom's gettoken answering only the last of the client's tries, each timing out first;
    at every try it records whether another process could take the refresh lock."""

    def __init__(self, clock: FakeClock, store: MemoryStore, lock: str, tries: int) -> None:
        super().__init__()
        self.clock, self.store, self.lock, self.tries = clock, store, lock, tries
        self.lock_free: list[bool] = []

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:  # type: ignore[override]
        self.clock.now += sum(kw["timeout"])  # connect, then wait the whole read timeout
        self.lock_free.append(self.store.acquire(self.lock, "another-process", 1))
        if len(self.lock_free) < self.tries:
            raise requests.ReadTimeout("no answer")
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"errcode":0,"access_token":"T","expires_in":7200}'
        return response


def test_the_refresh_lock_outlives_the_slowest_gettoken() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    settings = apps("http://wecom.invalid")
    lock = f"lock:{TokenCache.key(settings['hr'])}"
    session = _SlowTokenSession(clock, store, lock, tries=RetryPolicy().attempts)

    class Slowest(RetryPolicy):
        def delay(self, attempt: int) -> float:  # the longest wait the policy allows
            return min(self.cap_s, self.base_s * 2**attempt)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    client = WecomClient(settings, store, session=session, sleep=sleep, retry=Slowest())
    assert client.tokens.get(settings["hr"]) == "T"
    assert clock.now - 1_700_000_000 > 30  # slower than the old fixed 30-s lock
    assert session.lock_free == [False] * RetryPolicy().attempts  # nobody else fetched


@pytest.mark.parametrize("processes", [4])
def test_one_gettoken_across_processes_and_threads(
    emulator_server: EmulatorServer, emulator: Emulator, tmp_path: Path, processes: int
) -> None:
    """4 processes x 8 threads sending at once: one gettoken; after a revocation, one more."""
    db = tmp_path / "state.db"
    SqliteStore(str(db)).close()

    burst(emulator_server.url, f"sqlite:///{db}", processes, 8)
    assert gettokens(emulator) == 1
    assert len(emulator.messages()) == processes * 8
    emulator.revoke_tokens()
    burst(emulator_server.url, f"sqlite:///{db}", processes, 8)
    assert gettokens(emulator) == 2
    assert len(emulator.messages()) == 2 * processes * 8


class _CutOff:
    """A WeCom that takes message/send, then breaks the connection in the middle of its
    answer (a proxy restart, a reset after the headers): on 127.0.0.1, a real socket."""

    def __init__(self) -> None:
        import socket
        import threading

        self.delivered: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                sizes = [line.split(b":")[1] for line in head.split(b"\r\n")
                         if line.lower().startswith(b"content-length")]  # fmt: skip
                length = int(sizes[0]) if sizes else 0
                while len(body) < length:
                    body += conn.recv(65536)
                if b"gettoken" in head.split(b"\r\n")[0]:
                    answer = b'{"errcode":0,"access_token":"TOKEN","expires_in":7200}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(answer), answer))  # fmt: skip
                    continue
                self.delivered.append(body)  # WeCom has it: the member will see it
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b'Content-Length: 80\r\n\r\n{"errcode":0,')  # fmt: skip

    def close(self) -> None:
        self.sock.close()


def test_an_answer_cut_off_after_its_headers_is_no_answer_and_never_sent_twice() -> None:
    from callback.delivery.outbox import Outbox

    wecom = _CutOff()
    try:
        clock = FakeClock()
        client = WecomClient(apps(wecom.url), MemoryStore(clock),
                             retry=RetryPolicy(attempts=3, base_s=0.01, cap_s=0.02))  # fmt: skip
        with pytest.raises(NoAnswer, match="may have been delivered"):
            client.send("hr", Text("direct"), ["zhangsan"], duplicate_check=False)
        outbox = Outbox(client.store, client, owner=lambda: "test", clock=clock,
                        kick=lambda _id: None)  # fmt: skip
        with pytest.raises(NoAnswer):
            outbox.send("cb:1", "hr", Text("pay day"), ["zhangsan"], duplicate_check=False)
        clock.now += 3600  # every lease and backoff over: a maintenance pass
        for item in outbox.due():
            outbox.attempt(item)
        assert [b"pay day" in body for body in wecom.delivered] == [False, True]  # once each
        assert outbox.store.outbox_get("cb:1").state == "dead"  # type: ignore[union-attr]
    finally:
        wecom.close()


def test_a_failed_gettoken_never_logs_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    secret = "S3cretValueNeverInALog"
    client = WecomClient(apps(f"http://127.0.0.1:{free_port()}", secret=secret), MemoryStore(),
                         retry=RetryPolicy(attempts=1))  # fmt: skip
    try:
        client.send("hr", Text("x"), ["zhangsan"])
    except Unreachable:
        logging.getLogger("test").exception("the send failed")  # what a handler's log shows
    assert "the send failed" in caplog.text and "gettoken" in caplog.text
    assert secret not in caplog.text


def test_a_text_that_needs_more_messages_than_a_minute_allows_fails_before_sending(
    client: WecomClient, emulator: Emulator
) -> None:
    with pytest.raises(ValidationError, match=r"text.content: needs 35 messages.*at most 30"):
        client.send("hr", Text("a" * 70_000), ["zhangsan"])
    assert emulator.messages() == []
