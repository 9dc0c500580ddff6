"""The reply budget: a route's handler gets `reply_budget_ms`, and WeCom gets its answer by then.

The handler runs on a handler thread while the request thread waits out the budget. If the
handler returns in time, its reply is passive. Otherwise the request thread answers WeCom with
an empty 200 and goes, and the handler thread hands its reply to `late` when it returns. The
handler is never interrupted. (Running it on the request thread would save the two thread
switches, but a handler that turns slow would then hold a sync gunicorn worker, and past
gunicorn's timeout the worker is killed mid-handler: see bench/README.md.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from callback.inbound.replies import Reply

Call = Callable[[], "Reply | None"]
Late = Callable[["Reply | None"], object]  # its result is ignored
Submit = Callable[[Callable[[], None]], None]


class _Slot:
    """Hand-over between the request thread (waiting out the budget) and the handler thread."""

    __slots__ = ("done", "event", "late", "lock", "reply")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.event = threading.Event()
        self.done = self.late = False
        self.reply: Reply | None = None


def within(budget_s: float, call: Call, submit: Submit, late: Late) -> tuple[bool, Reply | None]:
    """Run `call` through `submit` (on a handler thread) and wait up to `budget_s`: (True, reply)
    if it returned in time; else (False, None), and `late(reply)` is called when it returns."""
    slot = _Slot()

    def job() -> None:
        reply = call()
        with slot.lock:
            slot.reply, slot.done = reply, True
            is_late = slot.late
        slot.event.set()
        if is_late:
            late(reply)

    submit(job)
    if not slot.event.wait(budget_s):
        with slot.lock:
            if not slot.done:
                slot.late = True
                return False, None
    return True, slot.reply
