"""The token cache: early refresh with jitter, single flight, compare-and-invalidate."""

from __future__ import annotations

import threading
import time

import pytest

from callback.config import AppSettings
from callback.errors import ApiError, WecomError
from callback.outbound.tokens import TokenCache, TokenPolicy
from callback.store import MemoryStore

APP = AppSettings(name="hr", corp_id="ww1", agent_id=1, secret="s3cret")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, fetched: list[str], delay: float = 0.0) -> TokenCache:
    def fetch(app: AppSettings) -> tuple[str, int]:
        time.sleep(delay)
        fetched.append(app.name)
        return f"token-{len(fetched)}", 7200

    return TokenCache(MemoryStore(clock), fetch, clock=clock, sleep=lambda s: time.sleep(0.001))


def test_cached_then_refreshed_early_with_jitter() -> None:
    clock, fetched = Clock(), []
    cache = make(clock, fetched)
    assert cache.get(APP) == "token-1"
    clock.now += 7200 - 300 - 121  # before the earliest refresh point (300 s + 120 s jitter)
    assert cache.get(APP) == "token-1"
    clock.now += 122  # past the latest refresh point, still before expiry
    assert cache.get(APP) == "token-2"
    assert fetched == ["hr", "hr"]


def test_secret_is_not_in_the_key() -> None:
    assert "s3cret" not in TokenCache.key(APP)
    other = AppSettings(name="x", corp_id="ww1", agent_id=1, secret="other")
    assert TokenCache.key(other) != TokenCache.key(APP)


def test_concurrent_callers_cause_one_fetch() -> None:
    clock, fetched = Clock(), []
    cache = make(clock, fetched, delay=0.05)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(APP))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fetched == ["hr"] and set(results) == {"token-1"}


def test_invalidate_only_if_still_cached() -> None:
    clock, fetched = Clock(), []
    cache = make(clock, fetched)
    old = cache.get(APP)
    assert cache.invalidate(APP, old)
    new = cache.get(APP)
    assert new != old
    assert not cache.invalidate(APP, old)  # a late rejection of the old token changes nothing
    assert cache.get(APP) == new and len(fetched) == 2


def test_fetch_errors_propagate_without_caching() -> None:
    calls = []

    def fetch(app: AppSettings) -> tuple[str, int]:
        calls.append(1)
        raise WecomError("40001 bad secret")

    cache = TokenCache(MemoryStore(), fetch)
    for _ in range(2):
        with pytest.raises(WecomError, match="40001"):
            cache.get(APP)
    assert len(calls) == 2


def test_waiting_for_a_stuck_holder_times_out() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    cache = TokenCache(
        store, lambda app: ("t", 7200), clock=clock, policy=TokenPolicy(wait_s=1.0),
        sleep=lambda s: setattr(clock, "now", clock.now + s),
    )  # fmt: skip
    store.acquire(f"lock:{TokenCache.key(APP)}", "someone-else", 60)
    with pytest.raises(WecomError, match="no access token"):
        cache.get(APP)


def test_a_failed_early_refresh_keeps_the_valid_token_in_use() -> None:
    clock, fetched = Clock(), []
    failing = threading.Event()

    def fetch(app: AppSettings) -> tuple[str, int]:
        if failing.is_set():
            raise WecomError("gettoken: no answer within 10 s")
        fetched.append(app.name)
        return f"token-{len(fetched)}", 7200

    cache = TokenCache(MemoryStore(clock), fetch, clock=clock)
    assert cache.get(APP) == "token-1"
    failing.set()
    clock.now += 7200 - 60  # due for its early refresh, valid for another minute
    assert cache.get(APP) == "token-1"
    assert cache.get(APP) == "token-1"  # every caller, not only the one that tried
    clock.now += 60  # expired: nothing left to fall back on
    with pytest.raises(WecomError, match="no answer"):
        cache.get(APP)


def test_refused_credentials_still_leave_the_valid_token_in_use() -> None:
    clock, fetched = Clock(), []

    def fetch(app: AppSettings) -> tuple[str, int]:
        fetched.append(app.name)
        if len(fetched) > 1:
            raise ApiError(40001, "invalid credential", "gettoken")
        return "token-1", 7200

    cache = TokenCache(MemoryStore(clock), fetch, clock=clock)
    assert cache.get(APP) == "token-1"
    clock.now += 7200 - 60  # the secret was rotated in the console meanwhile
    assert cache.get(APP) == "token-1" and cache.get(APP) == "token-1"
    assert len(fetched) == 2  # the refusal is remembered: WeCom is not asked again
    clock.now += 59.5  # the token expired; the refusal is still remembered
    with pytest.raises(ApiError, match="remembered"):
        cache.get(APP)
