"""Attempts: until when WeCom still listens to one HTTP attempt of a callback.

WeCom waits 5 s for each attempt, then gives up on it and sends a fresh copy (3 attempts in
all). A passive reply counts only if it reaches WeCom inside its attempt's window, so every
attempt gets a deadline on our clock, and delivery pushes instead of answering past it.

Two signals set the deadline. The first is the request's arrival in our process (from the
gunicorn worker's accept, so time spent queued for a thread counts) plus `reply_budget_ms`.
The second is the callback's own `timestamp` query parameter, WeCom's clock when it sent the
attempt: a request held up before it reached us (a proxy, a backlog) shows an old timestamp.
That signal is used only while our clock agrees with WeCom's, judged by the smallest
arrival-minus-timestamp offset among recent callbacks (the clock difference, plus the fastest
delivery and the timestamp's truncation to a whole second). The deadline it gives is the
timestamp plus 4.5 s, earlier where our clock is seen to be behind WeCom's; never later, since a
positive offset may be truncation rather than clock difference. So a late answer is impossible,
and a callback sent late in its second loses up to a second of its wait (its reply is pushed).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

#: How long WeCom waits for an attempt's answer.
WECOM_WAIT_S = 5.0
#: Room left for the reply's own way back to WeCom when the deadline comes from `timestamp`.
TRANSIT_MARGIN_S = 0.5
#: Our clock agrees with WeCom's when the smallest recent offset is within this.
AGREEMENT_S = 1.0
#: Below this much time left, an attempt is not worth waiting on: it is answered at once.
USEFUL_S = 0.1
#: How many recent callbacks the offset estimate looks back over.
SAMPLES = 64


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt: when it reached our process and the last moment a passive reply to
    it can still reach WeCom (both on our clock, seconds since the epoch)."""

    arrived_at: float
    deadline: float

    def remaining(self, now: float) -> float:
        """Seconds left to answer this attempt passively (negative once it is over)."""
        return self.deadline - now

    def abandoned(self, now: float) -> bool:
        """True when too little time is left for a passive reply to be worth waiting for."""
        return self.remaining(now) < USEFUL_S


class Deadlines:
    """Gives each attempt its deadline; one per process, shared by its request threads."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._offsets: deque[float] = deque(maxlen=SAMPLES)
        self._lock = threading.Lock()

    def attempt(self, arrived_at: float, timestamp: int | None) -> Attempt:
        """The attempt that arrived at `arrived_at`, sent by WeCom at `timestamp` (seconds,
        WeCom's clock), or None where the request carries none."""
        deadline = arrived_at + self.budget_s
        if timestamp is not None:
            offset = arrived_at - timestamp
            with self._lock:
                self._offsets.append(offset)
                skew = min(self._offsets)
            if abs(skew) <= AGREEMENT_S:  # our clock agrees with WeCom's: trust the timestamp
                wecom_gives_up = timestamp + min(skew, 0.0) + WECOM_WAIT_S
                deadline = min(deadline, wecom_gives_up - TRANSIT_MARGIN_S)
        return Attempt(arrived_at, deadline)
