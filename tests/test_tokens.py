"""The token cache: early refresh with jitter, single flight, compare-and-invalidate."""

from __future__ import annotations

import json
import logging
import random
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


def pinned(clock: Clock, fetched: list[str], expires_in: int) -> TokenCache:
    """A cache whose tokens last `expires_in` s, refreshed without jitter."""

    def fetch(app: AppSettings) -> tuple[str, int]:
        fetched.append(app.name)
        return f"token-{len(fetched)}", expires_in

    return TokenCache(MemoryStore(clock), fetch, clock=clock, policy=TokenPolicy(jitter_s=0))


def test_a_token_is_refreshed_exactly_at_its_refresh_time() -> None:
    clock, fetched = Clock(), []
    cache = pinned(clock, fetched, 7200)
    start = clock.now
    assert cache.get(APP) == "token-1"
    clock.now = start + 7200 - 300 - 0.01  # just before: early_s (300 s) before expiry
    assert cache.get(APP) == "token-1"
    clock.now = start + 7200 - 300  # exactly at it
    assert cache.get(APP) == "token-2" and len(fetched) == 2


def test_a_short_lived_token_is_refreshed_after_three_quarters_of_its_life() -> None:
    clock, fetched = Clock(), []
    cache = pinned(clock, fetched, 400)  # early_s (300 s) would be most of its life
    start = clock.now
    assert cache.get(APP) == "token-1"
    clock.now = start + 300 - 0.01
    assert cache.get(APP) == "token-1"
    clock.now = start + 300
    assert cache.get(APP) == "token-2"


@pytest.mark.parametrize(("draw", "refresh_after"), [("low", 300.0), ("high", 250.0)])
def test_the_refresh_jitter_spans_up_to_an_eighth_of_a_short_tokens_life(
    monkeypatch: pytest.MonkeyPatch, draw: str, refresh_after: float
) -> None:
    """400 s tokens: refreshed 100 s early (a quarter), minus 0 to 50 s of jitter (an eighth,
    below jitter_s): every process refreshes between 250 and 300 s after the fetch."""
    monkeypatch.setattr(random, "uniform", lambda a, b: a if draw == "low" else b)
    clock, fetched = Clock(), []

    def fetch(app: AppSettings) -> tuple[str, int]:
        fetched.append(app.name)
        return f"token-{len(fetched)}", 400

    cache = TokenCache(MemoryStore(clock), fetch, clock=clock)
    start = clock.now
    assert cache.get(APP) == "token-1"
    clock.now = start + refresh_after - 0.01
    assert cache.get(APP) == "token-1"
    clock.now = start + refresh_after
    assert cache.get(APP) == "token-2"


@pytest.mark.parametrize(("expires_in", "kept_s"), [(7200, 7199.0), (1, 1.0)])
def test_the_stored_token_is_forgotten_a_second_before_it_expires(
    expires_in: int, kept_s: float
) -> None:
    clock = Clock()
    store = MemoryStore(clock)
    cache = TokenCache(store, lambda app: ("t", expires_in), clock=clock)
    start = clock.now
    cache.get(APP)
    clock.now = start + kept_s - 0.01
    assert store.get(TokenCache.key(APP)) is not None
    clock.now = start + kept_s
    assert store.get(TokenCache.key(APP)) is None


def test_a_caller_waits_for_another_process_gettoken_and_uses_its_token() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the other process's gettoken lands after 3 polls
        polls.append(seconds)
        clock.now += seconds
        if len(polls) == 3:
            other = TokenCache(store, lambda app: ("theirs", 7200), clock=clock)
            store.release(f"lock:{TokenCache.key(APP)}", "someone-else")
            other.get(APP)

    cache = TokenCache(store, lambda app: ("ours", 7200), clock=clock, sleep=sleep)
    store.acquire(f"lock:{TokenCache.key(APP)}", "someone-else", 60)
    assert cache.get(APP) == "theirs" and len(polls) == 3


class RefreshedMeanwhile(MemoryStore):
    """A store where another process refreshes the token just before our lock is granted."""

    other_ran = False

    def acquire(self, key: str, owner: str, ttl_s: float) -> bool:
        if not self.other_ran:
            self.other_ran = True
            TokenCache(self, lambda app: ("theirs", 7200), clock=self.clock).get(APP)
        return super().acquire(key, owner, ttl_s)


def test_a_token_refreshed_by_another_process_before_our_lock_is_used_as_is() -> None:
    clock = Clock()
    fetched: list[str] = []

    def fetch(app: AppSettings) -> tuple[str, int]:
        fetched.append("ours")
        return "ours", 7200

    cache = TokenCache(RefreshedMeanwhile(clock), fetch, clock=clock)
    assert cache.get(APP) == "theirs" and fetched == []


def test_a_remembered_refusal_reads_like_wecoms_own() -> None:
    def fetch(app: AppSettings) -> tuple[str, int]:
        raise ApiError(40001, "invalid credential", "gettoken")

    cache = TokenCache(MemoryStore(), fetch)
    with pytest.raises(ApiError):
        cache.get(APP)
    with pytest.raises(ApiError, match="remembered") as remembered:
        cache.get(APP)
    assert remembered.value.errcode == 40001 and remembered.value.api == "gettoken"
    assert str(remembered.value).startswith("gettoken failed: errcode 40001")


def test_a_token_cached_before_expires_at_was_stored_is_still_used() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    old = {"token": "old-format", "refresh_at": clock.now + 600}  # written by an older version
    store.put(TokenCache.key(APP), json.dumps(old), 7000)
    cache = TokenCache(store, lambda app: ("new", 7200), clock=clock)
    assert cache.get(APP) == "old-format"
    assert cache.invalidate(APP, "old-format") and cache.get(APP) == "new"


def test_a_failed_early_refresh_is_logged_with_the_time_the_token_has_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, calls = Clock(), []

    def fetch(app: AppSettings) -> tuple[str, int]:
        calls.append(1)
        if len(calls) > 1:
            raise WecomError("gettoken: no answer within 10 s")
        return "token-1", 7200

    cache = TokenCache(MemoryStore(clock), fetch, clock=clock)
    cache.get(APP)
    clock.now += 7200 - 90
    with caplog.at_level(logging.WARNING, logger="wecom.tokens"):
        assert cache.get(APP) == "token-1"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "wecom.tokens"]
    assert line == (
        "app 'hr': early token refresh failed (gettoken: no answer within 10 s); the current "
        "token, valid for 90 s more, stays in use"
    )


def test_the_cache_key_is_stable_across_versions() -> None:
    """Old and new processes of a rolling upgrade share one store: they must share the token."""
    assert TokenCache.key(APP) == "token:ww1:94b2f4b9ec09f714a01b29b9"


def test_while_another_process_refreshes_callers_keep_the_current_token() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    cache = TokenCache(store, lambda app: ("token-1", 7200), clock=clock)
    assert cache.get(APP) == "token-1"
    clock.now += 7000  # due for its early refresh, which another process has begun
    store.acquire(f"lock:{TokenCache.key(APP)}", "another-process", 30)
    assert cache.get(APP) == "token-1"


def test_a_waiting_caller_gives_up_after_wait_s() -> None:
    clock, polls = Clock(), []
    store = MemoryStore(clock)

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        clock.now += seconds

    policy = TokenPolicy(wait_s=1.0, poll_s=0.5)
    cache = TokenCache(store, lambda app: ("t", 7200), clock=clock, policy=policy, sleep=sleep)
    store.acquire(f"lock:{TokenCache.key(APP)}", "someone-else", 60)
    with pytest.raises(WecomError) as stuck:
        cache.get(APP)
    assert polls == [0.5, 0.5]
    assert str(stuck.value) == (
        "app 'hr': no access token after 1 s waiting for another process's gettoken"
    )


def test_after_a_fetch_the_lock_is_free_for_the_next_one() -> None:
    """Process A fetched, then WeCom rejected the token: process B fetches at once."""
    clock, fetched = Clock(), []
    store = MemoryStore(clock)

    def fetch(app: AppSettings) -> tuple[str, int]:
        fetched.append(app.name)
        return f"token-{len(fetched)}", 7200

    never = TokenPolicy(wait_s=5.0)

    def no_wait(seconds: float) -> None:
        clock.now += seconds

    a = TokenCache(store, fetch, clock=clock, policy=never, sleep=no_wait)
    b = TokenCache(store, fetch, clock=clock, policy=never, sleep=no_wait)
    assert a.get(APP) == "token-1"
    assert a.invalidate(APP, "token-1")
    assert b.get(APP) == "token-2"
