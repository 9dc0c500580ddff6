"""RedisStore beyond the shared contract: several hosts, dead owners, outages, a full Redis,
configuration."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callback import Router
from callback.app import create_app
from callback.devtools.emulator import DEFAULT_CORP_ID, Emulator, EmulatorServer
from callback.devtools.simulator import Simulator
from callback.errors import ConfigError, Unavailable
from callback.store import open_store
from callback.store.records import RUNNING, InboxRecord, OutboxItem
from tests import redis_server
from tests.conftest import AES_KEY, TOKEN, emulator_settings, eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server.redis_url(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def hosts(redis_url: str) -> Iterator[Callable[..., Any]]:
    """Make RedisStores sharing one fresh prefix, as the processes of several hosts would."""
    from callback.store.redis import RedisStore

    prefix, made = redis_server.fresh_prefix(), []

    def host(clock: Callable[[], float] = time.time) -> RedisStore:
        made.append(RedisStore(redis_url, prefix=prefix, clock=clock))
        return made[-1]

    yield host
    for store in made:
        store.close()
    redis_server.forget(redis_url, prefix)


def record(key: str, owner: str, lease_until: float) -> InboxRecord:
    return InboxRecord(key, "app1", b"<xml/>", False, RUNNING, owner, lease_until)


def test_two_hosts_share_every_kind_of_state(hosts: Callable[..., Any]) -> None:
    clock = Clock()
    a, b = hosts(clock), hosts(clock)
    a.put("token", "t1", 60)
    assert b.get("token") == "t1"
    assert b.setdefault("sent", "b", 60) == "b" and a.setdefault("sent", "a", 60) == "b"
    assert a.acquire("refresh", "host-a", 30) and not b.acquire("refresh", "host-b", 30)
    assert b.delete_if("token", "t1") and a.get("token") is None
    assert a.reserve(["u1"], [(60.0, 2)], 2) == 0 and b.reserve(["u1"], [(60.0, 2)]) > 0
    assert a.inbox_claim(record("app1:m", "host-a", clock.now + 30)).created
    assert not b.inbox_claim(record("app1:m", "host-b", clock.now + 30)).created
    assert a.outbox_add(OutboxItem("s1", "app1", "message/send", ({"x": 1},)))
    assert not b.outbox_add(OutboxItem("s1", "app1", "message/send", ({"x": 2},)))
    assert b.outbox_claim("s1", "host-b", 30) is not None and a.outbox_claim("s1", "a", 30) is None


def test_prefixes_keep_deployments_apart(redis_url: str) -> None:
    from callback.store.redis import RedisStore

    one = RedisStore(redis_url, prefix=redis_server.fresh_prefix())
    two = RedisStore(redis_url, prefix=redis_server.fresh_prefix())
    try:
        one.put("k", "one", 60)
        assert two.get("k") is None
        assert one.acquire("l", "x", 60) and two.acquire("l", "y", 60)
    finally:
        for store in (one, two):
            store.close()
            redis_server.forget(redis_url, store.prefix)


def test_claims_race_across_hosts(hosts: Callable[..., Any]) -> None:
    clock = Clock()
    stores = [hosts(clock) for _ in range(3)]
    for n in range(20):
        stores[0].outbox_add(OutboxItem(f"s{n}", "app1", "message/send", ({},), next_at=n))
    claimed: list[str] = []
    leased: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        store = stores[n % 3]
        got = store.inbox_claim(record("app1:hot", f"w{n}", clock.now + 30)).created
        items = store.outbox_due(f"w{n}", 30, 3)
        with lock:
            claimed.extend([f"w{n}"] if got else [])
            leased.extend(i.id for i in items)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 1
    assert sorted(leased) == sorted(f"s{n}" for n in range(20))  # each item leased once


def test_a_dead_lock_holder_cannot_block(hosts: Callable[..., Any]) -> None:
    a, b = hosts(), hosts()  # the real clock
    assert a.acquire("lock:token", "dead-host", 0.3)
    assert not b.acquire("lock:token", "host-b", 30)
    ttl_ms = b._redis.pttl(f"{b.prefix}lock:lock:token")
    assert 0 < ttl_ms <= 300 + 1000  # Redis collects it soon after it expires
    time.sleep(0.35)
    assert b.acquire("lock:token", "host-b", 30)
    a.release("lock:token", "dead-host")  # too late: no effect
    assert not a.acquire("lock:token", "host-a", 30)


def test_a_retried_script_gives_the_same_answer(
    hosts: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection lost after the script ran: redis-py runs it again with the same token."""
    from callback.store import redis as module

    clock = Clock()
    store = hosts(clock)
    monkeypatch.setattr(module, "_token", lambda: "same-call")
    for _ in range(2):
        claimed = store.inbox_claim(record("app1:m", "a", clock.now + 30))
        assert claimed.created and claimed.attempts == 1
        assert store.reserve(["u1"], [(60.0, 2)], 2) == 0
        assert store.outbox_add(OutboxItem("s1", "app1", "message/send", ({},)))
        assert store.outbox_claim("s1", "a", 30) is not None
    assert store._redis.zcard(f"{store.prefix}rate:u1") == 2


def test_unavailable_when_redis_is_down() -> None:
    redis_server.need_package()
    port = redis_server.free_port()  # nothing listens there
    store = open_store(f"redis://:s3cret@127.0.0.1:{port}/0")
    calls: list[Callable[[], object]] = [
        lambda: store.get("k"),
        lambda: store.put("k", "v", 10),
        lambda: store.acquire("l", "o", 10),
        lambda: store.reserve(["u"], [(60.0, 1)]),
        lambda: store.inbox_claim(record("app1:m", "a", 0)),
        lambda: store.inbox_expired("a", 30, 10),
        lambda: store.outbox_due("a", 30, 10),
        store.outbox_depth,
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(Unavailable) as raised:
            call()
        assert time.monotonic() - started < 2
        assert raised.value.http_status == 503 and "s3cret" not in str(raised.value)
        assert f"127.0.0.1:{port}" in str(raised.value)


def test_recovers_when_redis_comes_back(tmp_path: Path) -> None:
    from callback.store.redis import RedisStore

    with redis_server.private_server(tmp_path) as server:
        store = RedisStore(server.url)
        store.put("k", "v", 60)
        assert store.inbox_claim(record("app1:m1", "a", time.time() + 30)).created
        server.stop()
        with pytest.raises(Unavailable):
            store.get("k")
        with pytest.raises(Unavailable):
            store.inbox_claim(record("app1:m2", "a", time.time() + 30))
        server.start()  # empty again (no persistence), scripts forgotten
        assert store.get("k") is None
        store.put("k", "v2", 60)
        assert store.get("k") == "v2"
        assert store.inbox_claim(record("app1:m2", "a", time.time() + 30)).created
        assert store.reserve(["u"], [(60.0, 1)]) == 0
        store.close()


def test_open_store_routes_redis_urls() -> None:
    redis_server.need_package()
    from callback.store.redis import DEFAULT_PREFIX, RedisStore

    plain = open_store("redis://127.0.0.1:1/0")
    assert isinstance(plain, RedisStore) and plain.prefix == DEFAULT_PREFIX
    tuned = open_store("rediss://user:pw@redis.example:6380/3?prefix=prod:&socket_timeout=1.5")
    assert isinstance(tuned, RedisStore) and tuned.prefix == "prod:"
    assert tuned.where == "rediss://redis.example:6380/3?socket_timeout=1.5"
    options = tuned._redis.connection_pool.connection_kwargs
    assert options["socket_timeout"] == 1.5 and options["socket_connect_timeout"] == 2.0
    assert options["db"] == 3 and options["password"] == "pw"
    for bad in ("redis://:pw@127.0.0.1:1/db0", "redis://:pw@127.0.0.1:1/0?socket_timeout=x"):
        with pytest.raises(ConfigError, match=r"server\.state redis://127") as raised:
            open_store(bad)
        assert "pw" not in str(raised.value)


def test_without_the_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis raises ImportError
    with pytest.raises(ConfigError, match=r"pip install '\.\[redis\]'"):
        open_store("redis://127.0.0.1:6379/0")
    code = "import sys; sys.modules['redis'] = None; import callback.app, callback.store.redis"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def full_redis(
    tmp_path: Path, emulator_server: EmulatorServer, emulator: Emulator
) -> Iterator[tuple[Any, Callable[..., Any]]]:
    """A private Redis as the state of an app whose send API is the emulator, and a switch that
    fills it: `noeviction` (what docs/deploy.md asks for) with maxmemory under what it holds."""
    import redis

    apps: list[Any] = []
    with redis_server.private_server(tmp_path) as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("maxmemory-policy", "noeviction")

        def fill(full: bool) -> None:
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", used // 2 if full else 0)

        def make(router: Router) -> Any:
            settings = emulator_settings(emulator_server.url, state=server.url, lease_s=2)
            apps.append(create_app(settings, router=router))
            return apps[-1].test_client()

        yield fill, make
        for app in apps:
            app.extensions["wecom.delivery"].stop()
            app.extensions["wecom.delivery"].store.close()
        admin.close()


SIM = Simulator.create(TOKEN, AES_KEY, DEFAULT_CORP_ID, agent_id=1000002)


def post(c: Any, fields: dict[str, Any]) -> tuple[int, bytes]:
    query, body = SIM.post(fields)  # each call re-encrypts, as WeCom's retries do
    response = c.post("/wecom/callback/hr", query_string=query, data=body)
    if response.status_code != 200:
        return response.status_code, response.data
    return 200, SIM.open_reply(response.data)


def test_a_full_redis_refuses_the_claim_with_503_and_the_retry_is_handled(
    full_redis: tuple[Any, Callable[..., Any]],
) -> None:
    fill, make = full_redis
    runs: list[str] = []
    router = Router()
    router.add("text", "hi", lambda m, ctx: runs.append(m.msg_id) or "hello")
    c = make(router)
    fields = SIM.text("hi")
    fill(True)
    status, body = post(c, fields)
    assert status == 503 and b"maxmemory" in body and runs == []  # nothing ran, nothing stored
    fill(False)
    status, reply = post(c, fields)  # WeCom's retry
    assert status == 200 and b"hello" in reply and len(runs) == 1


def test_redis_full_between_claim_and_outcome_loses_no_reply(
    full_redis: tuple[Any, Callable[..., Any]], emulator: Emulator
) -> None:
    """The claim is stored, the handler runs, then the outcome cannot be: WeCom gets a 503, its
    retry an empty 200 (the record is running), and once the lease runs out the handler runs
    again and its reply is pushed, once. At least once for the handler, once for the member."""
    fill, make = full_redis
    runs: list[str] = []
    router = Router()

    @router.text("hi")
    def hi(message, ctx):  # type: ignore[no-untyped-def]
        runs.append(message.msg_id)
        if len(runs) == 1:
            fill(True)  # Redis fills up while the first run works
        return "hello"

    c = make(router)
    fields = SIM.text("hi")
    assert post(c, fields)[0] == 503 and len(runs) == 1
    fill(False)
    assert post(c, fields) == (200, b"")  # WeCom's retry: still running under our lease
    eventually(lambda: len(emulator.messages()) == 1)
    time.sleep(1.5)
    assert [m.body["text"]["content"] for m in emulator.messages()] == ["hello"]
    assert len(runs) == 2 and runs[0] == runs[1]
