"""The Store contract, run against every backend (memory, SQLite, Redis) with a controlled clock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callback.errors import ConfigError
from callback.store import MemoryStore, SqliteStore, Store, open_store
from callback.store.records import DEAD, DONE, PENDING, RUNNING, InboxRecord, OutboxItem
from tests import redis_server


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server.redis_url(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, clock: Clock, tmp_path: Path) -> Iterator[Store]:
    backend: Store
    if request.param == "memory":
        backend = MemoryStore(clock)
    elif request.param == "sqlite":
        backend = SqliteStore(str(tmp_path / "s.db"), clock)
    else:
        from callback.store.redis import RedisStore

        url = request.getfixturevalue("redis_url")
        backend = RedisStore(url, prefix=redis_server.fresh_prefix(), clock=clock)
        request.addfinalizer(lambda: redis_server.forget(url, backend.prefix))
    yield backend
    backend.close()


def test_values_expire(store: Store, clock: Clock) -> None:
    store.put("k", "v", 10)
    assert store.get("k") == "v"
    clock.now += 10
    assert store.get("k") is None


def test_setdefault_is_first_writer_wins_until_expiry(store: Store, clock: Clock) -> None:
    assert store.setdefault("k", "a", 5) == "a"
    assert store.setdefault("k", "b", 5) == "a"
    clock.now += 5
    assert store.setdefault("k", "b", 5) == "b"


def test_compare_and_delete(store: Store) -> None:
    store.put("k", "v1", 60)
    assert not store.delete_if("k", "v0")
    assert store.get("k") == "v1"
    assert store.delete_if("k", "v1")
    assert not store.delete_if("k", "v1")


def test_locks_exclude_and_expire(store: Store, clock: Clock) -> None:
    assert store.acquire("l", "a", 30)
    assert not store.acquire("l", "b", 30)
    store.release("l", "b")  # not the holder: no effect
    assert not store.acquire("l", "b", 30)
    clock.now += 30  # a dead holder cannot block forever
    assert store.acquire("l", "b", 30)
    store.release("l", "b")
    assert store.acquire("l", "a", 30)


def test_rate_windows_all_or_nothing(store: Store, clock: Clock) -> None:
    limits = [(60.0, 3), (3600.0, 5)]
    assert store.reserve(["u1"], limits, 2) == 0
    wait = store.reserve(["u1", "u2"], limits, 2)  # u1 would have 4 in a minute
    assert wait == pytest.approx(60)
    assert store.reserve(["u2"], limits, 3) == 0  # u2 got nothing from the refused call
    clock.now += 61
    assert store.reserve(["u1"], limits, 3) == 0  # 5 in the hour
    clock.now += 61
    assert store.reserve(["u1"], limits, 1) == pytest.approx(3600 - 122)
    with pytest.raises(ValueError, match="never fit"):
        store.reserve(["u3"], limits, 4)


def test_reserve_is_atomic_under_threads(store: Store) -> None:
    limits = [(60.0, 30)]
    taken = []

    def worker() -> None:
        for _ in range(10):
            if store.reserve(["hot"], limits) == 0:
                taken.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 30


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    sqlite = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(sqlite, SqliteStore) and sqlite.path == f"{tmp_path}/x.db"
    assert open_store("sqlite:///rel.db").path == str(Path.cwd() / "rel.db")
    with pytest.raises(ConfigError, match=r"server\.state"):
        open_store("postgres://x")


# -- the inbox ---------------------------------------------------------------------------------

BINARY = bytes(range(256)) + "<xml>你好</xml>".encode()


def running(key: str, owner: str, lease_until: float, **kw: Any) -> InboxRecord:
    return InboxRecord(key, "app1", BINARY, False, RUNNING, owner, lease_until, **kw)


def test_inbox_claim_inserts_once(store: Store, clock: Clock) -> None:
    first = store.inbox_claim(running("app1:m1", "a", clock.now + 30))
    assert first.created and first.owner == "a" and first.attempts == 1
    assert first.plaintext == BINARY and first.created_at == clock.now and first.reply is None
    again = store.inbox_claim(running("app1:m1", "b", clock.now + 30))
    assert not again.created and again.owner == "a" and again.attempts == 1
    # marked pushed (see the next test), and the repeat counted as a retry absorbed
    assert store.inbox_get("app1:m1") == replace(first, pushed=True, retries=1)
    assert store.inbox_get("app1:other") is None
    as_json = InboxRecord("app1:j", "app1", b"{}", True, created_at=5.0, lease_until=clock.now)
    assert store.inbox_claim(as_json) == as_json  # the caller's created_at is kept


def test_inbox_claim_races_under_threads(store: Store, clock: Clock) -> None:
    created = []

    def worker(n: int) -> None:
        if store.inbox_claim(running("app1:hot", f"w{n}", clock.now + 30)).created:
            created.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1


def test_a_claim_that_finds_the_record_running_makes_its_reply_go_by_push(
    store: Store, clock: Clock
) -> None:
    store.inbox_claim(running("app1:m1", "a", clock.now + 30))
    assert not store.inbox_get("app1:m1").pushed  # type: ignore[union-attr]
    retry = store.inbox_claim(running("app1:m1", "b", clock.now + 30))
    assert not retry.created and retry.pushed and retry.state == RUNNING
    assert not store.inbox_finish("app1:m1", "a", b"passive", pushed=False)  # nobody listens
    record = store.inbox_get("app1:m1")
    assert record is not None and record.state == RUNNING and record.owner == "a"
    assert store.inbox_finish("app1:m1", "a", None, pushed=True)
    done = store.inbox_get("app1:m1")
    assert done is not None and done.state == DONE and done.pushed and done.reply is None
    # an unmarked record still takes its passive reply, and no reply at all is always taken
    for key in ("app1:m2", "app1:m3"):
        store.inbox_claim(running(key, "a", clock.now + 30))
    store.inbox_claim(running("app1:m3", "b", clock.now + 30))  # m3 marked
    assert store.inbox_finish("app1:m2", "a", b"passive", pushed=False)
    assert store.inbox_finish("app1:m3", "a", None, pushed=False)
    # a finished record is not marked by a later claim: its cached reply is replayed
    replay = store.inbox_claim(running("app1:m2", "b", clock.now + 30))
    assert not replay.pushed and replay.reply == b"passive"


def test_inbox_takeover_of_an_expired_lease(store: Store, clock: Clock) -> None:
    store.inbox_claim(running("app1:m1", "a", clock.now + 30))
    clock.now += 29
    assert not store.inbox_claim(running("app1:m1", "b", clock.now + 30)).created
    clock.now += 1  # a's process died: its lease ran out
    taken = store.inbox_claim(running("app1:m1", "b", clock.now + 30))
    assert taken.created and taken.owner == "b" and taken.attempts == 2 and taken.pushed
    assert taken.lease_until == clock.now + 30 and taken.plaintext == BINARY
    assert not store.inbox_finish("app1:m1", "a", b"late", pushed=False)  # a lost it


def test_inbox_recent_newest_first_with_outcome_time_and_retries(
    store: Store, clock: Clock
) -> None:
    for n in range(4):
        store.inbox_claim(running(f"app1:r{n}", "a", clock.now + 30))
        clock.now += 1
    clock.now += 0.5
    assert store.inbox_finish("app1:r1", "a", b"passive", pushed=False)
    store.inbox_claim(running("app1:r1", "b", clock.now + 30))  # WeCom's repeats: replayed
    store.inbox_claim(running("app1:r1", "b", clock.now + 30))
    store.inbox_claim(running("app1:r2", "b", clock.now + 30))  # while it runs
    recent = store.inbox_recent(3)
    assert [r.key for r in recent] == ["app1:r3", "app1:r2", "app1:r1"]
    by_key = {r.key: r for r in recent}
    assert by_key["app1:r1"].finished_at == clock.now and by_key["app1:r1"].retries == 2
    assert by_key["app1:r1"].reply == b"passive" and by_key["app1:r1"].state == DONE
    assert by_key["app1:r2"].finished_at == 0.0 and by_key["app1:r2"].retries == 1
    assert by_key["app1:r3"].retries == 0
    assert [r.key for r in store.inbox_recent(10)][-1] == "app1:r0"
    assert store.inbox_recent(0) == []


def test_inbox_finish_by_the_owner_only(store: Store, clock: Clock) -> None:
    store.inbox_claim(running("app1:m1", "a", clock.now + 30))
    assert not store.inbox_finish("app1:m1", "b", b"x", pushed=False)
    assert store.inbox_finish("app1:m1", "a", b"\x00reply\xff", pushed=False)
    assert not store.inbox_finish("app1:m1", "a", b"again", pushed=True)
    assert not store.inbox_finish("app1:nothing", "a", None, pushed=False)
    done = store.inbox_get("app1:m1")
    assert done is not None and done.state == DONE and done.reply == b"\x00reply\xff"
    assert not done.pushed
    clock.now += 3600  # a finished record is never taken over
    replay = store.inbox_claim(running("app1:m1", "b", clock.now + 30))
    assert not replay.created and replay.reply == b"\x00reply\xff" and replay.owner == "a"
    assert store.inbox_expired("b", 30, 10) == []


def test_inbox_reply_none_empty_and_pushed(store: Store, clock: Clock) -> None:
    for key in ("app1:none", "app1:empty"):
        store.inbox_claim(running(key, "a", clock.now + 30))
    store.inbox_finish("app1:none", "a", None, pushed=True)
    store.inbox_finish("app1:empty", "a", b"", pushed=False)
    none, empty = store.inbox_get("app1:none"), store.inbox_get("app1:empty")
    assert none is not None and none.reply is None and none.pushed
    assert empty is not None and empty.reply == b"" and not empty.pushed


def test_inbox_renew_extends_the_owners_leases(store: Store, clock: Clock) -> None:
    store.inbox_claim(running("app1:m1", "a", clock.now + 30))
    store.inbox_claim(running("app1:m2", "b", clock.now + 30))
    clock.now += 20
    store.inbox_renew(["app1:m1", "app1:m2", "app1:missing"], "a", 30)
    store.inbox_renew([], "a", 30)
    m1, m2 = store.inbox_get("app1:m1"), store.inbox_get("app1:m2")
    assert m1 is not None and m1.lease_until == clock.now + 30
    assert m2 is not None and m2.lease_until == clock.now + 10  # b's: untouched
    clock.now += 15
    assert [r.key for r in store.inbox_expired("c", 30, 10)] == ["app1:m2"]
    assert not store.inbox_claim(running("app1:m1", "c", clock.now + 30)).created


def test_inbox_expired_takes_over_dead_runs(store: Store, clock: Clock) -> None:
    start = clock.now
    for n in range(4):
        store.inbox_claim(running(f"app1:r{n}", "dead", start + 10 + n))
    store.inbox_claim(running("app1:done", "dead", start + 10))
    store.inbox_finish("app1:done", "dead", None, pushed=False)
    store.inbox_claim(InboxRecord("app1:noroute", "app1", b"x", False, DONE))
    assert store.inbox_expired("r", 30, 10) == []  # all leases still good
    clock.now = start + 12  # r0, r1 and r2 expired
    first = store.inbox_expired("r", 30, 2)
    second = store.inbox_expired("r", 30, 2)
    assert len(first) == 2 and len(second) == 1
    taken = {r.key for r in first + second}
    assert taken == {"app1:r0", "app1:r1", "app1:r2"}
    for record in first + second:
        assert record.owner == "r" and record.attempts == 2 and record.state == RUNNING
        assert record.lease_until == clock.now + 30 and record.plaintext == BINARY
    assert store.inbox_expired("r", 30, 10) == []
    assert store.inbox_finish("app1:r0", "r", b"ok", pushed=True)
    r3 = store.inbox_get("app1:r3")
    assert r3 is not None and r3.owner == "dead"


def test_inbox_purge_forgets_old_finished_records(store: Store, clock: Clock) -> None:
    start = clock.now
    store.inbox_claim(running("app1:old", "a", start + 30))
    store.inbox_claim(running("app1:old-running", "a", start + 30))
    store.inbox_claim(InboxRecord("app1:old-noroute", "app1", b"x", False, DONE))
    store.inbox_finish("app1:old", "a", b"r", pushed=False)
    clock.now += 100
    store.inbox_claim(running("app1:new", "a", clock.now + 30))
    store.inbox_finish("app1:new", "a", None, pushed=False)
    assert store.inbox_purge(start) == 0  # created_at == before is kept
    assert store.inbox_purge(start + 50) == 2
    assert store.inbox_get("app1:old") is None and store.inbox_get("app1:old-noroute") is None
    assert store.inbox_get("app1:old-running") is not None
    assert store.inbox_get("app1:new") is not None
    assert store.inbox_purge(start + 50) == 0
    fresh = store.inbox_claim(running("app1:old", "b", clock.now + 30))
    assert fresh.created and fresh.attempts == 1  # a purged key is new again


# -- the outbox --------------------------------------------------------------------------------

BODIES = ({"touser": "u1", "msgtype": "text", "text": {"content": "你好"}}, {"n": [1, 2.5, None]})


def item(item_id: str, next_at: float = 0.0, **kw: Any) -> OutboxItem:
    return OutboxItem(item_id, "app1", "message/send", BODIES, next_at=next_at, **kw)


def test_outbox_add_once_per_id(store: Store, clock: Clock) -> None:
    assert store.outbox_add(item("s1", clock.now))
    assert not store.outbox_add(OutboxItem("s1", "app2", "other", ({"x": 1},)))
    stored = store.outbox_get("s1")
    assert stored == item("s1", clock.now, created_at=clock.now)
    assert store.outbox_get("s2") is None
    assert store.outbox_depth() == 1


def test_outbox_claim_by_id(store: Store, clock: Clock) -> None:
    store.outbox_add(item("s1", clock.now + 600))  # not due yet: a claim by id sends it now
    leased = store.outbox_claim("s1", "a", 30)
    assert leased is not None and leased.owner == "a" and leased.lease_until == clock.now + 30
    assert leased.bodies == BODIES
    assert store.outbox_claim("s1", "b", 30) is None  # a holds it
    assert store.outbox_claim("missing", "b", 30) is None
    clock.now += 30  # a died
    again = store.outbox_claim("s1", "b", 30)
    assert again is not None and again.owner == "b"


def test_outbox_due_leases_in_next_at_order(store: Store, clock: Clock) -> None:
    start = clock.now
    for item_id, offset in [("c", 3), ("a", 1), ("b", 2), ("later", 100)]:
        store.outbox_add(item(item_id, start + offset))
    store.outbox_add(item("tie-second", start + 2, created_at=start + 0.5))
    store.outbox_add(item("tie-first", start + 2, created_at=start - 0.5))
    clock.now = start + 5
    first = store.outbox_due("w1", 30, 3)
    assert [i.id for i in first] == ["a", "tie-first", "b"]
    assert all(i.owner == "w1" and i.lease_until == clock.now + 30 for i in first)
    assert [i.id for i in store.outbox_due("w2", 30, 10)] == ["tie-second", "c"]
    assert store.outbox_due("w3", 30, 10) == []  # the rest is leased or not due
    assert store.outbox_due("w3", 30, 0) == []
    clock.now += 30  # every lease expired
    assert [i.id for i in store.outbox_due("w3", 30, 10)] == [
        "a", "tie-first", "b", "tie-second", "c",
    ]  # fmt: skip
    assert store.outbox_depth() == 6


def test_outbox_save_by_the_owner_only(store: Store, clock: Clock) -> None:
    store.outbox_add(item("s1", clock.now))
    leased = store.outbox_claim("s1", "a", 30)
    assert leased is not None
    progress: dict[str, Any] = {
        "parts_done": 1, "attempts": 1, "next_at": clock.now + 60, "error": "rate",
    }  # fmt: skip
    store.outbox_save(replace(leased, owner="b", **progress))
    assert store.outbox_get("s1") == leased  # b never held it
    results = ({"errcode": 0, "msgid": "m1"},)
    store.outbox_save(replace(leased, results=results, **progress))
    saved = store.outbox_get("s1")
    assert saved is not None and saved.parts_done == 1 and saved.attempts == 1
    assert saved.next_at == clock.now + 60 and saved.error == "rate" and saved.results == results
    assert saved.lease_until == 0.0 and saved.state == PENDING  # the lease is given back
    assert store.outbox_due("c", 30, 10) == []  # not due until next_at
    clock.now += 60
    due = store.outbox_due("c", 30, 10)
    assert [i.id for i in due] == ["s1"]
    store.outbox_save(replace(due[0], state=DONE, parts_done=2))
    assert store.outbox_depth() == 0
    assert store.outbox_claim("s1", "d", 30) is None  # done: nothing to lease
    clock.now += 3600
    assert store.outbox_due("d", 30, 10) == []
    done = store.outbox_get("s1")
    assert done is not None and done.state == DONE and done.parts_done == 2


def test_outbox_hold_fences_out_a_sender_whose_lease_was_taken(store: Store, clock: Clock) -> None:
    store.outbox_add(item("s1", clock.now))
    assert store.outbox_claim("s1", "a/1", 30) is not None
    clock.now += 20
    assert store.outbox_hold("s1", "a/1", 30)  # renewed: still a's for 30 s from now
    clock.now += 29
    assert store.outbox_claim("s1", "b/1", 30) is None and store.outbox_due("b/2", 30, 5) == []
    clock.now += 1  # a stalled past its lease: b takes the item
    assert store.outbox_claim("s1", "b/1", 30) is not None
    assert not store.outbox_hold("s1", "a/1", 30)  # a's late attempt stops before sending
    assert store.outbox_hold("s1", "b/1", 30)
    assert not store.outbox_hold("missing", "b/1", 30)
    saved = store.outbox_get("s1")
    assert saved is not None
    store.outbox_save(replace(saved, state=DONE))
    assert not store.outbox_hold("s1", "b/1", 30)  # done: nothing to hold


def test_dead_letters_are_listed_retried_and_dropped(store: Store, clock: Clock) -> None:
    for n, state in enumerate([DEAD, PENDING, DONE, DEAD]):
        store.outbox_add(item(f"s{n}", clock.now, created_at=clock.now + n))
        leased = store.outbox_claim(f"s{n}", "a", 30)
        assert leased is not None
        store.outbox_save(replace(leased, state=state, attempts=3, error=f"e{n}"))
    assert [i.id for i in store.outbox_list([DEAD], 10)] == ["s0", "s3"]
    assert [i.id for i in store.outbox_list([DEAD, PENDING], 2)] == ["s0", "s1"]
    assert store.outbox_list([DEAD], 10)[0].error == "e0"
    clock.now += 100
    assert store.outbox_retry("s0") and not store.outbox_retry("s1")  # only dead ones
    assert not store.outbox_retry("s2") and not store.outbox_retry("missing")
    again = store.outbox_get("s0")
    assert again is not None and again.state == PENDING and again.attempts == 0
    assert again.next_at == clock.now and again.bodies == BODIES
    assert sorted(i.id for i in store.outbox_due("b", 30, 10)) == ["s0", "s1"]  # due at once
    assert not store.outbox_drop("s0")  # leased by b right now
    assert store.outbox_drop("s3") and store.outbox_get("s3") is None
    assert not store.outbox_drop("s2")  # delivered items are kept until purged
    clock.now += 30
    assert store.outbox_drop("s1") and store.outbox_get("s1") is None
    assert store.outbox_depth() == 1 and [i.id for i in store.outbox_list([PENDING], 9)] == ["s0"]


def test_outbox_depth_counts_pending_items(store: Store, clock: Clock) -> None:
    assert store.outbox_depth() == 0
    for n in range(3):
        store.outbox_add(item(f"s{n}", clock.now + n))
    store.outbox_add(item("dead", clock.now, state="dead"))
    assert store.outbox_depth() == 3
    leased = store.outbox_claim("s0", "a", 30)
    assert leased is not None and store.outbox_depth() == 3  # leased is still pending
    store.outbox_save(replace(leased, state="dead", error="bad"))
    assert store.outbox_depth() == 2


def test_reserve_forgets_only_its_own_keys(store: Store, clock: Clock) -> None:
    assert store.reserve(["long"], [(3600.0, 2)], 2) == 0
    clock.now += 120
    assert store.reserve(["short"], [(60.0, 5)]) == 0  # must not forget "long"'s events
    assert store.reserve(["long"], [(3600.0, 2)]) == pytest.approx(3600 - 120)
    assert store.reserve(["twice", "twice"], [(60.0, 2)]) == 0  # one member named twice
    assert store.reserve(["twice"], [(60.0, 2)]) == 0


def test_inbox_transfer_moves_only_from_the_holder(store: Store, clock: Clock) -> None:
    record = InboxRecord("k", "hr", b"<xml/>", False, owner="queued:1", lease_until=clock.now + 30)
    assert store.inbox_claim(record).created
    assert not store.inbox_transfer("k", "someone-else", "worker-1", 30)
    assert store.inbox_transfer("k", "queued:1", "worker-1", 60)
    stored = store.inbox_get("k")
    assert stored is not None and stored.owner == "worker-1"
    assert stored.lease_until == pytest.approx(clock.now + 60)
    assert not store.inbox_transfer("k", "queued:1", "worker-2", 30)  # handed over once
    assert store.inbox_finish("k", "worker-1", None, pushed=True)
    assert not store.inbox_transfer("k", "worker-1", "worker-2", 30)  # done: not running


def test_outbox_purge_forgets_old_finished_items(store: Store, clock: Clock) -> None:
    for item_id in ("done", "dead", "pending"):
        assert store.outbox_add(item(item_id))
    for item_id, state in (("done", DONE), ("dead", "dead")):
        leased = store.outbox_claim(item_id, "me", 60)
        assert leased is not None
        store.outbox_save(replace(leased, state=state))
    clock.now += 100
    assert store.outbox_add(item("recent", next_at=clock.now))
    leased = store.outbox_claim("recent", "me", 60)
    assert leased is not None
    store.outbox_save(replace(leased, state=DONE))
    assert store.outbox_purge(clock.now - 50) == 2  # done and dead, created 100 s ago
    assert store.outbox_get("done") is None and store.outbox_get("dead") is None
    assert store.outbox_get("pending") is not None and store.outbox_get("recent") is not None
    assert store.outbox_depth() == 1


def test_many_processes_opening_a_new_state_file_at_once(tmp_path: Path) -> None:
    """Every gunicorn worker opens the fresh file at the same moment on a first start."""
    script = (
        "import sys, time\n"
        "from callback.store import SqliteStore\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "SqliteStore(sys.argv[1]).put('k', 'v', 60)\n"
    )
    for attempt in range(3):
        path = tmp_path / f"fresh-{attempt}.db"
        at = time.time() + 1.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(path), str(at)], stderr=subprocess.PIPE
            )
            for _ in range(6)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()


def test_sqlite_adds_the_outcome_columns_to_an_older_state_file(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the inbox table as the first release made it
        db.execute(
            "CREATE TABLE inbox (key TEXT PRIMARY KEY, app TEXT NOT NULL, plaintext BLOB NOT "
            "NULL, as_json INTEGER NOT NULL, state TEXT NOT NULL, owner TEXT NOT NULL, "
            "lease_until REAL NOT NULL, reply BLOB, pushed INTEGER NOT NULL, attempts INTEGER "
            "NOT NULL, created_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO inbox VALUES ('app1:old', 'app1', x'00', 0, 'done', 'a', 0, "
                   "NULL, 0, 1, 5.0)")  # fmt: skip
    store = SqliteStore(str(path))
    old = store.inbox_get("app1:old")
    assert old is not None and old.finished_at == 0.0 and old.retries == 0
    store.inbox_claim(running("app1:new", "a", time.time() + 30))
    assert store.inbox_finish("app1:new", "a", None, pushed=False)
    assert [r.key for r in store.inbox_recent(5)] == ["app1:new", "app1:old"]
    SqliteStore(str(path)).close()  # opening it again adds nothing twice
    store.close()
