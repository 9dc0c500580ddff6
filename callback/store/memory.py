"""MemoryStore: one process's state in dicts under a lock (unit tests, `memory://`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from callback.store.base import Limit, Store
from callback.store.windows import horizon, wait_needed


class MemoryStore(Store):
    """Not shared between processes; otherwise the same guarantees as the SQLite store."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._events: dict[str, list[float]] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._values.get(key)
            if item is None or item[1] <= self.clock():
                return None
            return item[0]

    def put(self, key: str, value: str, ttl_s: float) -> None:
        with self._lock:
            self._values[key] = (value, self.clock() + ttl_s)

    def setdefault(self, key: str, value: str, ttl_s: float) -> str:
        with self._lock:
            now = self.clock()
            item = self._values.get(key)
            if item is not None and item[1] > now:
                return item[0]
            self._values[key] = (value, now + ttl_s)
            return value

    def delete_if(self, key: str, expected: str) -> bool:
        with self._lock:
            item = self._values.get(key)
            if item is None or item[0] != expected:
                return False
            del self._values[key]
            return True

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            now = self.clock()
            held = self._locks.get(name)
            if held is not None and held[1] > now and held[0] != owner:
                return False
            self._locks[name] = (owner, now + ttl_s)
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            if self._locks.get(name, ("", 0.0))[0] == owner:
                del self._locks[name]

    def reserve(self, keys: Sequence[str], limits: Sequence[Limit], count: int = 1) -> float:
        with self._lock:
            now = self.clock()
            oldest = now - horizon(limits)
            histories = {k: [t for t in self._events.get(k, []) if t > oldest] for k in keys}
            wait = max((wait_needed(h, limits, count, now) for h in histories.values()), default=0)
            if wait > 0:
                return wait
            for key, history in histories.items():
                self._events[key] = history + [now] * count
            return 0.0
