"""Refusals: the log of refused callback requests, which a flood cannot flood.

Unauthenticated requests must stay cheap, and so must their log lines. The first refusal of
each kind (app, status and check) in a minute is logged in full; the rest of that minute's are
counted and summed up in one line when the next of their kind comes after it (or when any
refusal comes after it). An unknown application name counts as one kind, `(unknown)`, so
made-up names cannot grow the book either; the name itself appears only shortened and escaped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("wecom.endpoint")

UNKNOWN = "(unknown)"
#: How much of an unknown name a log line shows.
NAME_SHOWN = 40


def shown(name: str) -> str:
    """A name from the URL as a log line may show it: escaped, and shortened."""
    text = name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= NAME_SHOWN else text[:NAME_SHOWN] + "..."


class Refusals:
    """Logs refused requests, one full line per kind and window, the rest as a count."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._book: dict[tuple[str, int, str], tuple[float, int]] = {}  # kind: (start, unlogged)

    def refused(self, app: str, status: int, check: str, detail: str, remote: str) -> None:
        """Record one refusal of a request for `app` (a configured name, or UNKNOWN)."""
        now = self.clock()
        key = (app, status, check)
        with self._lock:
            ended = [(k, n) for k, (start, n) in self._book.items() if now - start >= self.window_s]
            for kind, _ in ended:
                del self._book[kind]
            entry = self._book.get(key)
            if entry is not None:
                self._book[key] = (entry[0], entry[1] + 1)
            else:
                self._book[key] = (now, 0)
        for (app_, status_, check_), unlogged in ended:
            if unlogged:
                log.warning(
                    "callback refused app=%s status=%d check=%s: %d more like this in the last "
                    "%.0f s (not logged one by one)",
                    app_, status_, check_, unlogged, self.window_s,
                )  # fmt: skip
        if entry is None:
            log.warning(
                "callback refused app=%s status=%d check=%s: %s remote=%s",
                app, status, check, detail, remote,
            )  # fmt: skip
