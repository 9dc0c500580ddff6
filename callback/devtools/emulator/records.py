"""Value records of what the emulator saw: messages, card updates, unanswered calls and stats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class MessageRecord:
    """An accepted message/send call; `dropped` members were over the per-member rate limit."""

    msgid: str
    corp_id: str
    agent_id: int
    msgtype: str
    body: Mapping[str, Any]
    touser: tuple[str, ...]
    toparty: tuple[str, ...]
    totag: tuple[str, ...]
    dropped: tuple[str, ...]
    report: Mapping[str, str]
    sent_at: float
    response_code: str | None = None
    recalled_at: float | None = None
    answered: bool = True
    """False when the call that delivered it got no answer (a no-answer fault with deliver)."""

    @property
    def recalled(self) -> bool:
        """Whether message/recall withdrew this message."""
        return self.recalled_at is not None

    @property
    def delivered(self) -> bool:
        """Whether it reached anyone (false when every member was over the rate limit)."""
        return bool(self.touser or self.toparty or self.totag)

    def delivered_to(self, userid: str) -> bool:
        """Whether userid (any case) received this message."""
        return userid.lower() in self.touser

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "msgid": self.msgid,
            "corp_id": self.corp_id,
            "agent_id": self.agent_id,
            "msgtype": self.msgtype,
            "body": dict(self.body),
            "touser": list(self.touser),
            "toparty": list(self.toparty),
            "totag": list(self.totag),
            "dropped": list(self.dropped),
            "report": dict(self.report),
            "sent_at": self.sent_at,
            "response_code": self.response_code,
            "recalled": self.recalled,
            "recalled_at": self.recalled_at,
            "answered": self.answered,
        }


DuplicateAnswer = Literal["original", "new_msgid"] | int
"""How a suppressed duplicate is answered: the first call's answer, the same with a fresh msgid
(one that names no message), or that (non-zero) errcode."""
DUPLICATE_ANSWERS = ("original", "new_msgid")


def check_duplicate_answer(answer: object) -> DuplicateAnswer:
    """answer if it is a DuplicateAnswer; ValueError otherwise."""
    if answer == "original":
        return "original"
    if answer == "new_msgid":
        return "new_msgid"
    if isinstance(answer, int) and not isinstance(answer, bool) and answer != 0:
        return answer
    raise ValueError(f"the duplicate answer must be one of {DUPLICATE_ANSWERS} or an errcode")


@dataclass(frozen=True)
class DuplicateRecord:
    """A message/send call that enable_duplicate_check kept from being delivered again.

    msgid is the message the identical body delivered first; errcode is what the call was
    answered (0 unless the emulator is set to answer duplicates with an errcode).
    """

    msgid: str
    corp_id: str
    agent_id: int
    body: Mapping[str, Any]
    suppressed_at: float
    errcode: int = 0
    answered: bool = True
    """False when the call got no answer (a no-answer fault with deliver)."""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "msgid": self.msgid,
            "corp_id": self.corp_id,
            "agent_id": self.agent_id,
            "body": dict(self.body),
            "suppressed_at": self.suppressed_at,
            "errcode": self.errcode,
            "answered": self.answered,
        }


@dataclass(frozen=True)
class UpdateRecord:
    """An accepted message/update_template_card call."""

    msgid: str
    response_code: str
    corp_id: str
    agent_id: int
    body: Mapping[str, Any]
    invaliduser: tuple[str, ...]
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "msgid": self.msgid,
            "response_code": self.response_code,
            "corp_id": self.corp_id,
            "agent_id": self.agent_id,
            "body": dict(self.body),
            "invaliduser": list(self.invaliduser),
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class UnansweredCall:
    """A call a no-answer fault left without an answer.

    deliver: the fault's variant. True: the call was handled as usual (message delivered and
    recorded, duplicate check and rate limits applied) and `withheld` is the answer it would have
    got, `errcode` that answer's errcode. False: lost before anything was handled (both None).
    ended: why the connection was closed (a HoldEnd value), None while it is still held.
    """

    path: str
    deliver: bool
    body: Mapping[str, Any] | None
    errcode: int | None
    withheld: Mapping[str, Any] | None
    received_at: float
    ended: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "path": self.path,
            "deliver": self.deliver,
            "body": None if self.body is None else dict(self.body),
            "errcode": self.errcode,
            "withheld": None if self.withheld is None else dict(self.withheld),
            "received_at": self.received_at,
            "ended": self.ended,
        }


@dataclass(frozen=True)
class Stats:
    """Counts of calls per API path, errcodes per path and gettoken calls per app ("corp/agent")."""

    calls: Mapping[str, int] = field(default_factory=dict)
    errcodes: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    gettoken: Mapping[str, int] = field(default_factory=dict)
    messages: int = 0
    duplicates: int = 0
    dropped: int = 0
    updates: int = 0
    recalls: int = 0
    uploads: int = 0
    late: Mapping[str, int] = field(default_factory=dict)
    """Calls per path whose answer a late-answer fault delayed."""
    held: int = 0
    """Connections held right now (a late answer pending or an answer withheld)."""
    unanswered: Mapping[str, int] = field(default_factory=dict)
    """Calls per path left without an answer (no-answer faults, both variants)."""
    lost: Mapping[str, int] = field(default_factory=dict)
    """Of those, calls per path lost before anything was handled (deliver=False)."""
    delivered_unanswered: int = 0
    """message/send calls that delivered a message (to anyone) but got no answer."""

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API (errcode keys become strings)."""
        return {
            "calls": dict(self.calls),
            "errcodes": {
                path: {str(code): n for code, n in codes.items()}
                for path, codes in self.errcodes.items()
            },
            "gettoken": dict(self.gettoken),
            "messages": self.messages,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "updates": self.updates,
            "recalls": self.recalls,
            "uploads": self.uploads,
            "late": dict(self.late),
            "held": self.held,
            "unanswered": dict(self.unanswered),
            "lost": dict(self.lost),
            "delivered_unanswered": self.delivered_unanswered,
        }
