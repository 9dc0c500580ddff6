"""State stores: where tokens, locks, rate windows (and later the inbox and outbox) live.

`open_store(url)` picks the backend: `sqlite:///PATH` (the default, shared by every process on a
machine), `redis://HOST:PORT/DB` or `rediss://` (every host; needs the `redis` extra), `memory://`
(one process; tests). Every backend gives the same guarantees.
"""

from __future__ import annotations

from callback.config import shown_url
from callback.errors import ConfigError
from callback.store.base import Store
from callback.store.memory import MemoryStore
from callback.store.sqlite import SqliteStore

__all__ = ["MemoryStore", "SqliteStore", "Store", "open_store"]


def open_store(url: str) -> Store:
    """The store for a `[server] state` URL."""
    if url.startswith("memory://"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them
        path = url.removeprefix("sqlite://").removeprefix("/")
        return SqliteStore(path or "wecom-state.db")
    if url.startswith(("redis://", "rediss://")):
        from callback.store.redis import RedisStore  # imports the optional redis package

        return RedisStore(url)
    raise ConfigError(
        f"server.state: no store for {shown_url(url)!r}; use sqlite:///PATH, redis://HOST or "
        "memory://"
    )
