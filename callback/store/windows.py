"""Sliding-window arithmetic shared by the store backends."""

from __future__ import annotations

from collections.abc import Sequence

from callback.store.base import Limit


def wait_needed(events: Sequence[float], limits: Sequence[Limit], count: int, now: float) -> float:
    """Seconds until `count` more events fit every limit, given past event times (sorted)."""
    wait = 0.0
    for window, most in limits:
        if count > most:
            raise ValueError(f"{count} events can never fit a limit of {most} per {window:g} s")
        recent = [t for t in events if t > now - window]
        excess = len(recent) + count - most
        if excess > 0:  # the excess-th oldest event must leave the window first
            wait = max(wait, recent[excess - 1] + window - now)
    return wait


def horizon(limits: Sequence[Limit]) -> float:
    """The longest window: events older than this can be forgotten."""
    return max((window for window, _ in limits), default=0.0)
