"""Access tokens: cached in the state store, shared, refreshed early, single-flight.

One `gettoken` per application per token lifetime, however many threads and processes share the
store: the first caller to find no fresh token takes a lock and fetches; the others keep using
the current token (early refresh) or wait for the new one. The lock outlives the slowest fetch
(the client sizes it), so a slow gettoken is never joined by a second one. An early refresh
that fails leaves the still-valid token in use. A token WeCom rejects is dropped only if it is
still the cached one (compare-and-delete), so a burst of rejections costs one fetch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from callback.config import AppSettings
from callback.errcodes import BAD_CREDENTIALS
from callback.errors import ApiError, WecomError
from callback.store import Store

log = logging.getLogger("wecom.tokens")

#: Fetches a token for an app: returns (access_token, expires_in seconds) or raises.
Fetcher = Callable[[AppSettings], tuple[str, int]]


@dataclass(frozen=True)
class TokenPolicy:
    """When to refresh: `early_s` before expiry, minus up to `jitter_s` at random."""

    early_s: float = 300.0
    jitter_s: float = 120.0
    lock_ttl_s: float = 30.0
    refused_ttl_s: float = 60.0  # a refused secret is not asked again for this long
    wait_s: float = 30.0
    poll_s: float = 0.05


class TokenCache:
    """Per-application tokens in a Store; see the module docstring for the guarantees."""

    def __init__(
        self,
        store: Store,
        fetch: Fetcher,
        *,
        policy: TokenPolicy = TokenPolicy(),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.fetch = fetch
        self.policy = policy
        self.clock = clock
        self.sleep = sleep

    @staticmethod
    def key(app: AppSettings) -> str:
        """The cache key: per corp and secret (a digest: the secret itself is never stored)."""
        digest = hashlib.sha256(f"{app.corp_id}\0{app.secret}".encode()).hexdigest()[:24]
        return f"token:{app.corp_id}:{digest}"

    def _cached(self, key: str) -> tuple[str, float, str, float] | None:
        """(token, refresh_at, the stored text, expires_at) of the cached, unexpired token."""
        raw = self.store.get(key)
        if raw is None:
            return None
        entry = json.loads(raw)
        refresh_at = float(entry["refresh_at"])
        return str(entry["token"]), refresh_at, raw, float(entry.get("expires_at", refresh_at))

    def get(self, app: AppSettings) -> str:
        """A valid token for `app`, fetching it at most once across every sharer of the store."""
        key = self.key(app)
        owner = uuid.uuid4().hex  # one per caller: threads of a process must not share the lock
        deadline = self.clock() + self.policy.wait_s
        while True:
            cached = self._cached(key)
            if cached is not None and self.clock() < cached[1]:
                return cached[0]
            refused = self.store.get(f"{key}:refused")
            if refused is not None and cached is not None:  # still valid: keep using it
                return cached[0]
            if refused is not None:  # WeCom refused these credentials a moment ago
                code, message = json.loads(refused)
                raise ApiError(int(code), f"{message} (remembered for a minute)", "gettoken")
            if self.store.acquire(f"lock:{key}", owner, self.policy.lock_ttl_s):
                try:
                    return self._refresh(app, key)
                finally:
                    self.store.release(f"lock:{key}", owner)
            if cached is not None:  # due for refresh, still valid: another caller is on it
                return cached[0]
            if self.clock() >= deadline:
                raise WecomError(
                    f"app {app.name!r}: no access token after {self.policy.wait_s:g} s "
                    "waiting for another process's gettoken"
                )
            self.sleep(self.policy.poll_s)

    def _refresh(self, app: AppSettings, key: str) -> str:
        cached = self._cached(key)  # another holder may have refreshed before we got the lock
        if cached is not None and self.clock() < cached[1]:
            return cached[0]
        try:
            token, expires_in = self.fetch(app)
        except WecomError as exc:
            if isinstance(exc, ApiError) and exc.errcode in BAD_CREDENTIALS:
                refused = json.dumps([exc.errcode, exc.errmsg])  # repeated wrong secrets get
                self.store.put(f"{key}:refused", refused, self.policy.refused_ttl_s)  # blocked
            if cached is None:
                raise
            log.warning(
                "app %r: early token refresh failed (%s); the current token, valid for %.0f s "
                "more, stays in use", app.name, exc, cached[3] - self.clock(),
            )  # fmt: skip
            return cached[0]
        now = self.clock()
        margin = min(self.policy.early_s, expires_in / 4)
        jitter = random.uniform(0, min(self.policy.jitter_s, expires_in / 8))
        entry = {
            "token": token,
            "refresh_at": now + expires_in - margin - jitter,
            "expires_at": now + expires_in,
        }
        self.store.put(key, json.dumps(entry), ttl_s=max(expires_in - 1, 1))
        return token

    def invalidate(self, app: AppSettings, token: str) -> bool:
        """Drop `token` if it is still the cached one (WeCom rejected it: 40014/42001)."""
        key = self.key(app)
        cached = self._cached(key)
        if cached is None or cached[0] != token:
            return False
        return self.store.delete_if(key, cached[2])
