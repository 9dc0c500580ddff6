"""The Store contract: small atomic operations the token cache, rate windows and inbox build on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

#: (window in seconds, most events allowed in it)
Limit = tuple[float, int]


class Store(ABC):
    """Shared state with atomic operations; every method is safe across threads (and, for
    the persistent backends, across processes)."""

    # -- values with an expiry (token cache) -----------------------------------------------------

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The value under `key`, or None if absent or expired."""

    @abstractmethod
    def put(self, key: str, value: str, ttl_s: float) -> None:
        """Store `value` under `key` for `ttl_s` seconds."""

    @abstractmethod
    def setdefault(self, key: str, value: str, ttl_s: float) -> str:
        """Atomically store `value` unless `key` holds an unexpired value; return what it holds."""

    @abstractmethod
    def delete_if(self, key: str, expected: str) -> bool:
        """Delete `key` only if it still holds `expected` (compare-and-delete)."""

    # -- locks with an expiry (single-flight refresh) ---------------------------------------------

    @abstractmethod
    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take lock `name` for `owner` unless someone else holds an unexpired one."""

    @abstractmethod
    def release(self, name: str, owner: str) -> None:
        """Release lock `name` if `owner` still holds it."""

    # -- sliding rate windows ------------------------------------------------------------------

    @abstractmethod
    def reserve(self, keys: Sequence[str], limits: Sequence[Limit], count: int = 1) -> float:
        """Record `count` events for every key if all stay within every limit; all or nothing.

        Returns 0.0 when recorded, else the seconds until the reservation could succeed.
        """

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release resources (connections)."""
