"""Route speeds: which routes may run on the request thread (no hand-over to a handler thread).

Handing a handler to a handler thread and waiting for it costs two thread switches, most of a
fast callback's time in delivery. So a route whose recent runs in this process were all fast
and sent nothing runs on the request thread instead. Under `wecom serve`'s threaded worker that
is safe even when such a route turns slow: the process's main thread keeps the worker alive, and
delivery still puts the reply where WeCom listens (pushed once the deadline has passed, or once
a retry has come). A route starts on handler threads and earns its place; one slow run, or one
that sends through `ctx.send`, sends it back.
"""

from __future__ import annotations

#: How many fast runs in a row make a route run on the request thread.
STREAK = 16
#: A run is fast under this many seconds (or a tenth of the budget, if less).
FAST_S = 0.05


class RouteSpeeds:
    """Per process: how many fast runs in a row each route has had. Races between threads only
    miscount a run, which delays or hastens a route's move; they never break delivery."""

    def __init__(self, budget_s: float) -> None:
        self.fast_s = min(FAST_S, budget_s / 10)
        self._streaks: dict[str, int] = {}

    def inline(self, route: str) -> bool:
        """Whether the route has earned a run on the request thread."""
        return self._streaks.get(route, 0) >= STREAK

    def ran(self, route: str, seconds: float, sent: bool) -> None:
        """Record one run: its time, and whether it sent anything through ctx.send."""
        if seconds < self.fast_s and not sent:
            self._streaks[route] = self._streaks.get(route, 0) + 1
        else:
            self._streaks[route] = 0
