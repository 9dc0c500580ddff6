"""RedisStore: state in Redis, shared by every process on every host (`redis://`, `rediss://`).

Key layout, every key under a prefix (default ``wecom:``; ``?prefix=NAME:`` in the URL) so that
deployments can share a Redis (one server or a Sentinel-managed primary; not Redis Cluster):

- ``kv:KEY``, ``lock:NAME``: hashes {v: value or owner, x: expires_at}
- ``rate:KEY``: sorted set of event times (members unique per call)
- ``inbox:KEY``: a record's hash; ``inbox-running`` (key by lease_until), ``inbox-done`` (key by
  created_at) index the running and finished ones
- ``outbox:ID``: an item's hash; ``outbox-pending`` (id by next_at) indexes the pending ones

Every change is one Lua script (see redis_scripts), so it is atomic across hosts; reads are one
command each. Expiry is
judged by the store's clock (as in the other backends); Redis' own key expiry only collects
garbage. Connection and server errors raise `Unavailable`. The `redis` package is an optional
extra, imported when a RedisStore is made.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from callback.errors import ConfigError, Unavailable
from callback.store import redis_records as rec
from callback.store import redis_scripts as lua
from callback.store.base import Limit, Store
from callback.store.records import InboxRecord, OutboxItem
from callback.store.windows import horizon, wait_needed

if TYPE_CHECKING:
    from redis import Redis

DEFAULT_PREFIX = "wecom:"
#: Redis drops a key this long after the store's clock says it expired (garbage collection only).
GRACE_MS = 1000
#: Connection settings unless the URL's query sets them: a down Redis must fail fast (503).
CONNECTION = {"socket_connect_timeout": 2.0, "socket_timeout": 3.0, "health_check_interval": 15}
_PURGE_BATCH = 500


def _token() -> str:
    return uuid.uuid4().hex


def _px(ttl_s: float) -> int:
    return max(1, math.ceil(ttl_s * 1000)) + GRACE_MS


def split_url(url: str) -> tuple[str, str | None, str]:
    """(the URL for redis-py, the ``prefix`` query value, the URL without credentials)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), None)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    shown = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=rest))
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ConfigError(f"server.state {shown}: the database must be a number (redis://HOST/0)")
    return urlunsplit(parts._replace(query=rest)), prefix, shown


class RedisStore(Store):
    """The SQLite store's guarantees, across hosts; thread-safe, and safe to use after a fork."""

    def __init__(
        self, url: str, *, prefix: str | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ConfigError(
                f"server.state {url.split('://')[0]}://: the redis package is missing; "
                "pip install '.[redis]' (or pip install 'redis>=5')"
            ) from exc
        url, url_prefix, self.where = split_url(url)
        self.prefix = prefix if prefix is not None else (url_prefix or DEFAULT_PREFIX)
        self.clock = clock
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1)  # a stale connection
        try:
            self._redis: Redis = redis.Redis.from_url(url, retry=retry, **CONNECTION)
        except ValueError as exc:
            raise ConfigError(f"server.state {self.where}: {exc}") from exc
        self._scripts = {
            name: self._redis.register_script(source) for name, source in lua.ALL.items()
        }

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}{name}"

    def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one command or script; any Redis failure becomes `Unavailable` (a 503)."""
        try:
            return command(*args, **kwargs)
        except self._errors as exc:
            raise Unavailable(f"state store {self.where}: {exc}") from exc

    def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return self._call(self._scripts[script], keys=keys, args=args)

    # -- values and locks ------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        value, expires = self._call(self._redis.hmget, self._key("kv:", key), ["v", "x"])
        if value is None or float(expires) <= self.clock():
            return None
        return bytes(value).decode()

    def put(self, key: str, value: str, ttl_s: float) -> None:
        expires = rec.number(self.clock() + ttl_s)
        self._run("put", [self._key("kv:", key)], [value, expires, _px(ttl_s)])

    def setdefault(self, key: str, value: str, ttl_s: float) -> str:
        now = self.clock()
        args = [value, rec.number(now + ttl_s), _px(ttl_s), rec.number(now)]
        return bytes(self._run("setdefault", [self._key("kv:", key)], args)).decode()

    def delete_if(self, key: str, expected: str) -> bool:
        return bool(self._run("delete_if", [self._key("kv:", key)], [expected]))

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        now = self.clock()
        args = [owner, rec.number(now + ttl_s), _px(ttl_s), rec.number(now)]
        return bool(self._run("acquire", [self._key("lock:", name)], args))

    def release(self, name: str, owner: str) -> None:
        self._run("delete_if", [self._key("lock:", name)], [owner])

    def reserve(self, keys: Sequence[str], limits: Sequence[Limit], count: int = 1) -> float:
        if not keys:
            return 0.0
        now = self.clock()
        wait_needed([], limits, count, now)  # a count that can never fit raises ValueError
        longest = horizon(limits)
        args: list[Any] = [rec.number(now), count, rec.number(now - longest), _px(longest)]
        args.append(_token())
        for window, most in limits:
            args += [rec.number(window), most]
        rate_keys = [self._key("rate:", key) for key in dict.fromkeys(keys)]
        return float(self._run("reserve", rate_keys, args))

    # -- inbox -----------------------------------------------------------------------------------

    def _record(self, key: str) -> str:
        return self._key("inbox:", key)

    def inbox_claim(self, record: InboxRecord) -> InboxRecord:
        now, token = self.clock(), _token()
        stored = replace(record, created_at=record.created_at or now)
        keys = [self._record(record.key), self._key("inbox-running"), self._key("inbox-done")]
        args = [rec.number(now), token, record.key, record.owner, rec.number(record.lease_until)]
        created, fields = self._run("inbox_claim", keys, args + rec.inbox_fields(stored, token))
        return rec.inbox_record(rec.as_hash(fields), created=bool(created))

    def inbox_finish(self, key: str, owner: str, reply: bytes | None, pushed: bool) -> bool:
        keys = [self._record(key), self._key("inbox-running"), self._key("inbox-done")]
        passive = reply is not None and not pushed
        args = [key, owner, int(pushed), int(reply is not None), reply or b"", int(passive)]
        args.append(rec.number(self.clock()))
        return bool(self._run("inbox_finish", keys, args))

    def inbox_renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        if keys:
            until = rec.number(self.clock() + lease_s)
            records = [self._record(key) for key in keys]
            self._run("inbox_renew", [self._key("inbox-running"), *records], [owner, until, *keys])

    def inbox_transfer(self, key: str, from_owner: str, to_owner: str, lease_s: float) -> bool:
        until = rec.number(self.clock() + lease_s)
        keys = [self._key("inbox-running"), self._record(key)]
        return bool(self._run("inbox_transfer", keys, [from_owner, to_owner, until, key]))

    def inbox_expired(self, owner: str, lease_s: float, limit: int) -> list[InboxRecord]:
        if limit <= 0:
            return []
        now = self.clock()
        until, records = rec.number(now + lease_s), self._record("")
        args = [rec.number(now), owner, until, limit, _token(), records]
        taken = self._run("inbox_expired", [self._key("inbox-running")], args)
        return [rec.inbox_record(rec.as_hash(fields)) for fields in taken]

    def inbox_get(self, key: str) -> InboxRecord | None:
        fields = self._call(self._redis.hgetall, self._record(key))
        return rec.inbox_record(rec.as_hash(fields)) if fields else None

    def inbox_recent(self, limit: int) -> list[InboxRecord]:
        if limit <= 0:
            return []
        running = self._call(self._redis.zrevrange, self._key("inbox-running"), 0, limit - 1)
        done = self._call(self._redis.zrevrange, self._key("inbox-done"), 0, limit - 1)
        found = []
        for key in dict.fromkeys([*running, *done]):
            name = key.decode() if isinstance(key, bytes) else str(key)
            fields = self._call(self._redis.hgetall, self._record(name))
            if fields:
                found.append(rec.inbox_record(rec.as_hash(fields)))
        found.sort(key=lambda r: r.created_at, reverse=True)
        return found[:limit]

    def inbox_purge(self, before: float) -> int:
        total, args = 0, [rec.number(before), _PURGE_BATCH, self._record("")]
        while True:  # in batches, so that no single script blocks Redis for long
            purged = int(self._run("inbox_purge", [self._key("inbox-done")], args))
            total += purged
            if purged < _PURGE_BATCH:
                return total

    # -- outbox ----------------------------------------------------------------------------------

    def _item(self, item_id: str) -> str:
        return self._key("outbox:", item_id)

    def outbox_add(self, item: OutboxItem) -> bool:
        token, stored = _token(), replace(item, created_at=item.created_at or self.clock())
        keys = [self._item(item.id), self._key("outbox-pending")]
        return bool(
            self._run("outbox_add", keys, [item.id, token, *rec.outbox_fields(stored, token)])
        )

    def outbox_claim(self, item_id: str, owner: str, lease_s: float) -> OutboxItem | None:
        now = self.clock()
        args = [rec.number(now), owner, rec.number(now + lease_s), _token()]
        fields = self._run("outbox_claim", [self._item(item_id)], args)
        return rec.outbox_item(rec.as_hash(fields)) if fields else None

    def outbox_due(self, owner: str, lease_s: float, limit: int) -> list[OutboxItem]:
        if limit <= 0:
            return []
        now = self.clock()
        args = [rec.number(now), owner, rec.number(now + lease_s), limit, _token(), self._item("")]
        leased = self._run("outbox_due", [self._key("outbox-pending")], args)
        return [rec.outbox_item(rec.as_hash(fields)) for fields in leased]

    def outbox_hold(self, item_id: str, owner: str, lease_s: float) -> bool:
        until = rec.number(self.clock() + lease_s)
        return bool(self._run("outbox_hold", [self._item(item_id)], [owner, until]))

    def outbox_save(self, item: OutboxItem) -> None:
        keys = self._outbox_keys(item.id)
        self._run("outbox_save", keys, [item.id, item.owner, *rec.progress_fields(item)])

    def outbox_purge(self, before: float) -> int:
        total, args = 0, [rec.number(before), _PURGE_BATCH, self._item("")]
        while True:  # the inbox's purge script, over the finished items' index
            purged = int(self._run("inbox_purge", [self._key("outbox-finished")], args))
            total += purged
            if purged < _PURGE_BATCH:
                return total

    def outbox_get(self, item_id: str) -> OutboxItem | None:
        fields = self._call(self._redis.hgetall, self._item(item_id))
        return rec.outbox_item(rec.as_hash(fields)) if fields else None

    def outbox_depth(self) -> int:
        return int(self._call(self._redis.zcard, self._key("outbox-pending")))

    def outbox_list(self, states: Sequence[str], limit: int) -> list[OutboxItem]:
        ids: list[bytes] = []
        for index in ("outbox-pending", "outbox-finished"):
            ids += self._call(self._redis.zrange, self._key(index), 0, -1)
        items = [self.outbox_get(item_id.decode()) for item_id in dict.fromkeys(ids)]
        found = [i for i in items if i is not None and i.state in states]
        return sorted(found, key=lambda i: (i.created_at, i.id))[:limit]

    def _outbox_keys(self, item_id: str) -> list[str]:
        return [self._item(item_id), self._key("outbox-pending"), self._key("outbox-finished")]

    def outbox_retry(self, item_id: str) -> bool:
        args = [item_id, rec.number(self.clock())]
        return bool(self._run("outbox_retry", self._outbox_keys(item_id), args))

    def outbox_drop(self, item_id: str) -> bool:
        args = [item_id, rec.number(self.clock())]
        return bool(self._run("outbox_drop", self._outbox_keys(item_id), args))

    def close(self) -> None:
        self._redis.close()
