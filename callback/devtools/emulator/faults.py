"""Injected faults and latency: the next N calls to a path answer an errcode or an HTTP status."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


def normalize_path(path: str | None) -> str | None:
    """ "/cgi-bin/message/send" and "message/send" name the same API path."""
    if path is None:
        return None
    path = path.strip("/")
    return path.removeprefix("cgi-bin/")


@dataclass(frozen=True)
class Fault:
    """Answer the next `remaining` calls to path (None = any API) with errcode or http_status."""

    remaining: int
    errcode: int | None = None
    http_status: int | None = None
    path: str | None = None


class Faults:
    """Pending faults (consumed one per call) and latency per path; locked by the Emulator."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self._latency: dict[str | None, float] = {}

    def add(self, fault: Fault) -> None:
        """Queue a fault behind the ones already pending."""
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        if fault.http_status is not None and not 100 <= fault.http_status <= 599:
            raise ValueError("http_status must be an HTTP status code")
        self._pending.append(replace(fault, path=normalize_path(fault.path)))

    def take(self, path: str) -> Fault | None:
        """Consume one call of the first fault matching path."""
        for index, fault in enumerate(self._pending):
            if fault.path in (None, path):
                if fault.remaining > 1:
                    self._pending[index] = replace(fault, remaining=fault.remaining - 1)
                else:
                    del self._pending[index]
                return fault
        return None

    def set_latency(self, ms: float, path: str | None = None) -> None:
        """Delay calls to path (None = every API) by ms milliseconds; 0 removes the delay."""
        if not math.isfinite(ms) or ms < 0:
            raise ValueError("latency must be a finite number of milliseconds >= 0")
        key = normalize_path(path)
        if ms:
            self._latency[key] = ms / 1000
        else:
            self._latency.pop(key, None)

    def latency(self, path: str) -> float:
        """Seconds to wait before answering a call to path."""
        return self._latency.get(path, self._latency.get(None, 0.0))
