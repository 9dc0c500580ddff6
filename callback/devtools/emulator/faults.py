"""Injected faults and latency: the next N calls to a path (whose body matches) misbehave."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

MATCH_KEYS = frozenset({"enable_duplicate_check", "touser", "msgtype", "fields"})
"""The keys of a CallMatch in its JSON form."""


def normalize_path(path: str | None) -> str | None:
    """ "/cgi-bin/message/send" and "message/send" name the same API path."""
    if path is None:
        return None
    path = path.strip("/")
    return path.removeprefix("cgi-bin/")


@dataclass(frozen=True)
class CallMatch:
    """Which request bodies a fault applies to; every given condition must hold.

    enable_duplicate_check: the body's flag, an absent flag counting as 0.
    touser: a userid among the body's `|`-joined touser (any case), or "@all".
    msgtype: the body's msgtype.
    fields: top-level body fields that must be present and equal to these JSON values.
    A body that isn't a JSON object (or a call without one, like gettoken) matches nothing.
    """

    enable_duplicate_check: int | None = None
    touser: str | None = None
    msgtype: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        flag = self.enable_duplicate_check
        if flag is not None and (isinstance(flag, bool) or flag not in (0, 1)):
            raise ValueError("enable_duplicate_check must be 0 or 1")
        for name in ("touser", "msgtype"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string")
        if not isinstance(self.fields, Mapping) or not all(isinstance(k, str) for k in self.fields):
            raise ValueError("fields must be an object")
        object.__setattr__(self, "fields", json.loads(_canonical(dict(self.fields))))

    def matches(self, body: Mapping[str, Any] | None) -> bool:
        """Whether body (the parsed request JSON) meets every condition."""
        if not isinstance(body, Mapping):
            return False
        flag, value = self.enable_duplicate_check, body.get("enable_duplicate_check")
        if flag is not None and not _same(0 if value is None else value, flag):
            return False
        if self.touser is not None and not _to(body.get("touser"), self.touser):
            return False
        if self.msgtype is not None and body.get("msgtype") != self.msgtype:
            return False
        return all(key in body and _same(body[key], want) for key, want in self.fields.items())

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API (conditions that are set)."""
        data: dict[str, Any] = {}
        for name in ("enable_duplicate_check", "touser", "msgtype"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.fields:
            data["fields"] = dict(self.fields)
        return data

    @classmethod
    def from_json(cls, data: object) -> CallMatch:
        """Parse the control API's JSON form; ValueError on unknown keys or bad values."""
        if not isinstance(data, dict):
            raise ValueError("match must be an object")
        unknown = set(data) - MATCH_KEYS
        if unknown:
            raise ValueError(f"unknown match keys {sorted(unknown)}; known: {sorted(MATCH_KEYS)}")
        fields = data.get("fields", {})
        if not isinstance(fields, dict):
            raise ValueError("match.fields must be an object")
        return cls(
            data.get("enable_duplicate_check"), data.get("touser"), data.get("msgtype"), fields
        )


def _to(touser: object, userid: str) -> bool:
    if not isinstance(touser, str):
        return False
    wanted = userid.lower()
    return any(part.lower() == wanted for part in touser.split("|"))


def _same(value: object, want: object) -> bool:
    """JSON equality: 1, 1.0 and true differ, object key order doesn't matter."""
    return _canonical(value) == _canonical(want)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


MAX_HOLD_SECONDS = 3600.0
"""Longest a fault may hold a connection (late answer or withheld answer)."""
DEFAULT_MAX_HOLD = 60.0
"""Seconds a no-answer fault holds a connection unless the client gives up first."""


class FaultKind(StrEnum):
    """What a fault does to the call that uses it up."""

    ERROR = "error"
    """Answer errcode and/or http_status instead of handling the call."""
    LATE = "late"
    """Handle the call, then answer `seconds` later."""
    NO_ANSWER = "no_answer"
    """Handle the call (deliver, record), then never answer: hold up to `seconds`, then close."""
    LOST = "lost"
    """Handle nothing and never answer: hold up to `seconds`, then close."""


@dataclass(frozen=True)
class Fault:
    """Spoil the next `remaining` calls to path (None = any API) as `kind` says.

    ERROR answers errcode or http_status; LATE, NO_ANSWER and LOST use `seconds`.
    With `match`, only calls whose JSON body matches count (and use the fault up).
    """

    remaining: int
    errcode: int | None = None
    http_status: int | None = None
    path: str | None = None
    match: CallMatch | None = None
    kind: FaultKind = FaultKind.ERROR
    seconds: float = 0.0


BodyProbe = Callable[[], Mapping[str, Any] | None]
"""Returns the call's parsed JSON body (None if it has none); only asked when a match needs it."""


def no_body() -> Mapping[str, Any] | None:
    """The BodyProbe of a call without a JSON body."""
    return None


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
        if fault.kind is not FaultKind.ERROR and not (
            math.isfinite(fault.seconds) and 0 < fault.seconds <= MAX_HOLD_SECONDS
        ):
            raise ValueError(f"the hold must be more than 0 and at most {MAX_HOLD_SECONDS:g} s")
        self._pending.append(replace(fault, path=normalize_path(fault.path)))

    def take(self, path: str, body: BodyProbe = no_body) -> Fault | None:
        """Consume one call of the first fault matching path (and the body, if it has a match)."""
        for index, fault in enumerate(self._pending):
            if fault.path not in (None, path):
                continue
            if fault.match is not None and not fault.match.matches(body()):
                continue
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
