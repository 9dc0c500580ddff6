"""The Store contract, run against every backend (memory and SQLite), with a controlled clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from callback.errors import ConfigError
from callback.store import MemoryStore, SqliteStore, Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: Clock, tmp_path: Path) -> Iterator[Store]:
    backend: Store = (
        MemoryStore(clock)
        if request.param == "memory"
        else SqliteStore(str(tmp_path / "s.db"), clock)
    )
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
