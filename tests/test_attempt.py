"""Attempt deadlines: arrival plus the budget, and WeCom's timestamp while the clocks agree."""

from __future__ import annotations

import pytest

from callback.delivery.attempt import AGREEMENT_S, SAMPLES, USEFUL_S, Attempt, Deadlines

T = 1_800_000_000  # a WeCom timestamp (whole seconds)


def near(expected: float) -> object:
    """To the millisecond: pytest.approx's default (relative 1e-6) is 30 minutes at T."""
    return pytest.approx(expected, abs=1e-3)


def test_without_a_timestamp_the_deadline_is_arrival_plus_budget() -> None:
    attempt = Deadlines(4.0).attempt(T + 0.3, None)
    assert attempt == Attempt(T + 0.3, T + 4.3)
    assert attempt.remaining(T + 1.3) == pytest.approx(3.0)


def test_a_fresh_callback_keeps_its_whole_budget_when_it_came_early_in_its_second() -> None:
    deadlines = Deadlines(4.0)
    assert deadlines.attempt(T + 0.2, T).deadline == near(T + 4.2)


def test_a_held_up_callback_loses_the_delay_when_clocks_agree() -> None:
    deadlines = Deadlines(4.0)
    for n in range(5):
        deadlines.attempt(T + n + 0.3, T + n)  # WeCom's and our clocks agree (offset 0.3 s)
    held = deadlines.attempt(T + 9.0, T + 5)  # sent at T+5, reached us 4 s later
    assert held.deadline == near(T + 5 + 4.5)
    assert not held.abandoned(T + 9.0) and held.abandoned(T + 9.45)
    older = deadlines.attempt(T + 10.0, T + 5)  # 5 s late: nothing to wait for
    assert older.abandoned(T + 10.0)


def test_our_clock_behind_wecoms_makes_the_deadline_earlier() -> None:
    deadlines = Deadlines(4.0)
    for n in range(5):
        deadlines.attempt(T + n - 0.8, T + n)  # our clock is 0.8 s behind
    held = deadlines.attempt(T + 6.2, T + 5)  # sent at T+5 by WeCom's clock, 2 s in transit
    assert held.deadline == near(T + 5 - 0.8 + 4.5)


def test_our_clock_ahead_never_makes_the_deadline_later() -> None:
    deadlines = Deadlines(4.0)
    for n in range(5):
        deadlines.attempt(T + n + 0.9, T + n)  # 0.9 s: truncation, or our clock ahead
    held = deadlines.attempt(T + 8.0, T + 5)
    assert held.deadline == near(T + 5 + 4.5)  # not T + 5.9 + 4.5


def test_the_timestamp_is_ignored_while_the_clocks_disagree() -> None:
    deadlines = Deadlines(4.0)
    for n in range(5):
        deadlines.attempt(T + n + 10.0, T + n)  # WeCom's clock is 10 s behind ours
    held = deadlines.attempt(T + 20.0, T + 5)  # 15 s by the timestamps: not believed
    assert held.deadline == near(T + 24.0)
    first = Deadlines(4.0).attempt(T + 4.0, T)  # a first callback, 4 s late: nothing to compare
    assert first.deadline == near(T + 8.0)


def test_the_clock_check_looks_at_recent_callbacks_only() -> None:
    deadlines = Deadlines(4.0)
    deadlines.attempt(T + 0.1, T)  # agreeing, long ago
    for n in range(SAMPLES):
        deadlines.attempt(T + n + 30.0, T + n)  # since then, 30 s apart
    held = deadlines.attempt(T + 100.0, T + 60)
    assert held.deadline == near(T + 104.0)  # the old agreement is forgotten


def test_an_attempt_with_exactly_the_useful_time_left_is_still_waited_on() -> None:
    attempt = Attempt(0.0, USEFUL_S)
    assert attempt.remaining(0.0) == USEFUL_S
    assert not attempt.abandoned(0.0)
    assert attempt.abandoned(0.001)


def test_clocks_exactly_the_agreement_apart_still_agree() -> None:
    deadlines = Deadlines(4.0)
    deadlines.attempt(T + AGREEMENT_S, T)  # the smallest offset is exactly AGREEMENT_S
    held = deadlines.attempt(T + 8.0, T + 5)  # 3 s on the way: the timestamp is believed
    assert held.deadline == near(T + 5 + 4.5)
    beyond = Deadlines(4.0)
    beyond.attempt(T + AGREEMENT_S + 0.01, T)
    assert beyond.attempt(T + 8.0, T + 5).deadline == near(T + 12.0)  # not believed
