"""The outbox: accepted messages, duplicate checks, per-member rate limits, cards and recalls."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .apps import EmulatorApp
from .card_updates import CardUpdate
from .cards import INTERACTIVE_TYPES, TASK_ID_USED, issues_response_code, task_id_of
from .errors import INVALID_PARAMETER, ApiError
from .recipients import Resolution
from .records import DuplicateAnswer, DuplicateRecord, MessageRecord, UpdateRecord
from .validation import Envelope

PER_MINUTE = 30
PER_HOUR = 1000
RESPONSE_CODE_LIFETIME = 72 * 3600
RECALL_WINDOW = 24 * 3600


@dataclass(frozen=True)
class ResponseCode:
    """A response_code handed out for an updatable card; usable once."""

    code: str
    msgid: str
    issued_at: float
    used: bool = False


@dataclass(frozen=True)
class _Sent:
    sent_at: float
    interval: int
    response: Mapping[str, Any]


class Outbox:
    """Message state of all apps; not locked itself, the Emulator calls it under its lock."""

    def __init__(self) -> None:
        self.records: dict[str, MessageRecord] = {}
        self.updates: list[UpdateRecord] = []
        self.duplicates: list[DuplicateRecord] = []
        self.dropped = 0
        self.recalls = 0
        self._codes: dict[str, ResponseCode] = {}
        self._sent: dict[tuple[str, str], _Sent] = {}
        self._deliveries: dict[tuple[str, str], list[float]] = {}
        self._task_ids: set[tuple[str, str]] = set()

    def send(
        self,
        app: EmulatorApp,
        envelope: Envelope,
        body: Mapping[str, Any],
        resolution: Resolution,
        now: float,
        *,
        answered: bool = True,
        duplicate_answer: DuplicateAnswer = "original",
    ) -> dict[str, Any]:
        """Record a checked message and answer as WeCom does (errcode 0 even when dropped).

        With enable_duplicate_check, a body identical (as parsed JSON) to one this app had
        delivered within that one's duplicate_check_interval is not delivered again: it is
        recorded in `duplicates` and answered as duplicate_answer says.
        answered=False marks the record as made by a call that gets no answer.
        """
        fingerprint = (app.key, json.dumps(body, sort_keys=True, ensure_ascii=False))
        prior = self._sent.get(fingerprint)
        if envelope.duplicate_interval and prior and now < prior.sent_at + prior.interval:
            return self._suppress(app, body, prior, now, answered, duplicate_answer)
        card = body.get("template_card") if envelope.msgtype == "template_card" else None
        if card is not None and task_id_of(card):
            if (app.key, task_id_of(card)) in self._task_ids:
                raise ApiError(TASK_ID_USED, f"task_id {task_id_of(card)} was already used")
            self._task_ids.add((app.key, task_id_of(card)))
        delivered, dropped = self._throttle(app, resolution.users, now)
        msgid = secrets.token_urlsafe(32)
        code = self._new_code(msgid, now) if card and issues_response_code(card) else None
        self.records[msgid] = MessageRecord(
            msgid=msgid,
            corp_id=app.corp_id,
            agent_id=app.agent_id,
            msgtype=envelope.msgtype,
            body=body,
            touser=delivered,
            toparty=resolution.parties,
            totag=resolution.tags,
            dropped=dropped,
            report=resolution.report(),
            sent_at=now,
            response_code=code,
            answered=answered,
        )
        response: dict[str, Any] = {"errcode": 0, "errmsg": "ok", **resolution.report()}
        response["msgid"] = msgid
        if code is not None:
            response["response_code"] = code
        if envelope.duplicate_interval:
            self._sent[fingerprint] = _Sent(now, envelope.duplicate_interval, response)
        return response

    def _suppress(
        self,
        app: EmulatorApp,
        body: Mapping[str, Any],
        prior: _Sent,
        now: float,
        answered: bool,
        answer: DuplicateAnswer,
    ) -> dict[str, Any]:
        original = str(prior.response["msgid"])
        errcode = answer if isinstance(answer, int) else 0
        duplicate = DuplicateRecord(original, app.corp_id, app.agent_id, body, now, errcode)
        self.duplicates.append(replace(duplicate, answered=answered))
        if isinstance(answer, int):
            raise ApiError(answer, "an identical message was sent within duplicate_check_interval")
        response = dict(prior.response)
        if answer == "new_msgid":
            response.pop("response_code", None)
            response["msgid"] = secrets.token_urlsafe(32)
        return response

    def _throttle(
        self, app: EmulatorApp, users: tuple[str, ...], now: float
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        delivered: list[str] = []
        dropped: list[str] = []
        for user in users:
            times = [t for t in self._deliveries.get((app.key, user), ()) if t > now - 3600]
            if len(times) >= PER_HOUR or sum(t > now - 60 for t in times) >= PER_MINUTE:
                dropped.append(user)
            else:
                times.append(now)
                delivered.append(user)
            self._deliveries[(app.key, user)] = times
        self.dropped += len(dropped)
        return tuple(delivered), tuple(dropped)

    def issue_code(self, msgid: str, now: float) -> str:
        """Hand out a fresh response_code for a sent card (at send time or on a user's click)."""
        record = self.records.get(msgid)
        if record is None or record.response_code is None:
            raise KeyError(f"{msgid} is not an updatable card")
        return self._new_code(msgid, now)

    def _new_code(self, msgid: str, now: float) -> str:
        code = secrets.token_urlsafe(32)
        self._codes[code] = ResponseCode(code, msgid, now)
        return code

    def update(self, app: EmulatorApp, update: CardUpdate, now: float) -> dict[str, Any]:
        """Apply a checked update_template_card call, spending its response_code."""
        entry = self._codes.get(update.response_code)
        if entry is None or entry.used or now >= entry.issued_at + RESPONSE_CODE_LIFETIME:
            raise ApiError(60140, "response_code is unknown, used or older than 72 h")
        record = self.records[entry.msgid]
        if (record.corp_id, record.agent_id) != (app.corp_id, app.agent_id):
            raise ApiError(42015, "the card was sent by another app")
        card = record.body.get("template_card") or {}
        if update.replace_name is not None and card.get("card_type") not in INTERACTIVE_TYPES:
            raise ApiError(INVALID_PARAMETER, "button.replace_name needs an interactive card")
        self._codes[entry.code] = replace(entry, used=True)
        everyone = update.atall or "@all" in record.touser
        lowered = dict.fromkeys(user.lower() for user in update.userids)
        invalid = () if everyone else tuple(u for u in lowered if u not in record.touser)
        body = {"userids": list(update.userids), "partyids": list(update.partyids)}
        body |= {"tagids": list(update.tagids), "atall": int(update.atall)}
        if update.card is not None:
            body["template_card"] = dict(update.card)
        else:
            body["button"] = {"replace_name": update.replace_name}
        self.updates.append(
            UpdateRecord(entry.msgid, entry.code, app.corp_id, app.agent_id, body, invalid, now)
        )
        return {"errcode": 0, "errmsg": "ok", "invaliduser": list(invalid)}

    def recall(self, app: EmulatorApp, msgid: object, now: float) -> None:
        """Withdraw a message of this app sent within the last 24 h."""
        if not isinstance(msgid, str) or not msgid:
            raise ApiError(INVALID_PARAMETER, "msgid is required")
        record = self.records.get(msgid)
        if record is None or (record.corp_id, record.agent_id) != (app.corp_id, app.agent_id):
            raise ApiError(INVALID_PARAMETER, "msgid was not sent by this app")
        if record.recalled:
            raise ApiError(INVALID_PARAMETER, "message was already recalled")
        if now >= record.sent_at + RECALL_WINDOW:
            raise ApiError(42052, "message is older than 24 h")
        self.records[msgid] = replace(record, recalled_at=now)
        self.recalls += 1
