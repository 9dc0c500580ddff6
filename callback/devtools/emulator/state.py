"""The Emulator: apps, tokens, media, outbox, faults, clock and statistics behind one lock."""

from __future__ import annotations

import itertools
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from .aibot_responses import (
    AibotResponseCode,
    AibotResponseRecord,
    AibotResponses,
    ResponsePolicy,
    SecondCall,
    check_second_call,
)
from .aibot_ws.hub import AibotWsHub
from .apps import DEFAULT_APPS, EmulatorApp, app_for_secret, check_new_app
from .card_updates import parse_update
from .errors import ApiError
from .faults import (
    DEFAULT_MAX_HOLD,
    BodyProbe,
    CallMatch,
    Fault,
    FaultKind,
    Faults,
    no_body,
    normalize_path,
)
from .holds import HoldEnd, HoldOrder, Holds
from .media import MediaRecord, MediaStore
from .outbox import Outbox
from .recipients import resolve
from .records import (
    DuplicateAnswer,
    DuplicateRecord,
    MessageRecord,
    Stats,
    UnansweredCall,
    UpdateRecord,
    check_duplicate_answer,
)
from .tokens import IssuedToken, TokenStore
from .validation import SendContext, check_send
from .webhooks import (
    DEFAULT_WEBHOOK_KEY,
    WebhookPolicy,
    WebhookRecord,
    WebhookRobot,
    WebhookRobots,
)

CALLBACK_IPS = ("127.0.0.1", "192.0.2.10", "198.51.100.0/28")
"""getcallbackip answer: localhost plus documentation-range addresses (one a CIDR block)."""


class Emulator:
    """A thread-safe fake of qyapi.weixin.qq.com; the Flask app is a thin edge around it."""

    def __init__(
        self,
        apps: Iterable[EmulatorApp] = DEFAULT_APPS,
        *,
        clock: Callable[[], float] = time.time,
        duplicate_answer: DuplicateAnswer = "original",
        aibot_second_call: SecondCall = "silent",
        aibot_accept_stream: bool = False,
        webhook_keys: Iterable[str] = (DEFAULT_WEBHOOK_KEY,),
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._initial_duplicate_answer = check_duplicate_answer(duplicate_answer)
        self._initial_aibot_policy = ResponsePolicy(
            check_second_call(aibot_second_call), aibot_accept_stream
        )
        self._initial_apps = tuple(apps)
        self._initial_webhook_keys = tuple(webhook_keys)
        self._holds = Holds()
        self._call_ids = itertools.count(1)
        self.aibot_ws = AibotWsHub(self.now, self._register_ws_code)
        """AI bots' long connections (served by an AibotConnectionServer)."""
        self.reset()

    def reset(self) -> None:
        """Back to the constructor's apps, group robots and knobs with no tokens, media,
        messages, AI-bot response codes or responses, robot messages, faults or clock offset.

        Held connections are released: late answers go out now, withheld ones are closed. The
        long-connection hub is reset too (its open connections are closed).
        """
        self._holds.release_all()
        self.aibot_ws.reset()
        with self._lock:
            self._offset = 0.0
            self._apps: dict[str, EmulatorApp] = {}
            self._tokens = TokenStore()
            self._media = MediaStore()
            self._outbox = Outbox()
            self._faults = Faults()
            self._calls: Counter[str] = Counter()
            self._errcodes: dict[str, Counter[int]] = {}
            self._gettoken: Counter[str] = Counter()
            self._late: Counter[str] = Counter()
            self._unanswered: dict[int, UnansweredCall] = {}
            self._duplicate_answer = self._initial_duplicate_answer
            self._aibot = AibotResponses(self._initial_aibot_policy)
            self._webhooks = WebhookRobots(self._initial_webhook_keys, WebhookPolicy())
            for app in self._initial_apps:
                self.add_app(app)

    def add_app(self, app: EmulatorApp) -> EmulatorApp:
        """Register an app; raises ValueError if its agent id or secret is taken in its corp."""
        with self._lock:
            check_new_app(self._apps.values(), app)
            self._apps[app.key] = app
            return app

    def apps(self) -> tuple[EmulatorApp, ...]:
        """The registered apps."""
        with self._lock:
            return tuple(self._apps.values())

    def now(self) -> float:
        """The emulator's clock: the injected clock plus everything advance() added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the emulator's clock forward; returns the new now()."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self.now()

    def revoke_tokens(self) -> int:
        """Invalidate every access_token early (then 40014), as WeCom may do."""
        with self._lock:
            return self._tokens.revoke_all()

    def expire_tokens(self) -> int:
        """Expire every access_token now (then 42001)."""
        with self._lock:
            return self._tokens.expire_all(self.now())

    def fail_next(
        self,
        n: int = 1,
        errcode: int | None = None,
        http_status: int | None = None,
        path: str | None = None,
        *,
        match: CallMatch | None = None,
    ) -> None:
        """Answer the next n calls to path (default any API) with errcode (default -1) or status.

        With match, only calls whose JSON body matches are failed (and count towards n).
        """
        errcode = -1 if errcode is None and http_status is None else errcode
        with self._lock:
            self._faults.add(Fault(n, errcode, http_status, path, match))

    def late_answer_next(
        self, n: int = 1, *, ms: float, path: str | None = None, match: CallMatch | None = None
    ) -> None:
        """Handle the next n calls (to path, matching) at once but answer each ms later.

        Unlike set_latency this only hits n calls, and the call is handled (a message delivered)
        before the wait, so a client that gives up early has still sent it.
        """
        with self._lock:
            self._faults.add(
                Fault(n, path=path, match=match, kind=FaultKind.LATE, seconds=ms / 1000)
            )

    def no_answer_next(
        self,
        n: int = 1,
        *,
        deliver: bool,
        path: str | None = None,
        match: CallMatch | None = None,
        max_seconds: float = DEFAULT_MAX_HOLD,
    ) -> None:
        """Never answer the next n calls (to path, matching); hold each until the client gives up.

        deliver=True: handle the call fully first (the message is delivered and recorded, the
        duplicate check and rate limits apply), then withhold the answer. deliver=False: the
        call is lost before anything is handled. Either way the connection stays open until the
        client closes it, max_seconds pass or a release, and is then closed without a response.
        """
        kind = FaultKind.NO_ANSWER if deliver else FaultKind.LOST
        with self._lock:
            self._faults.add(Fault(n, path=path, match=match, kind=kind, seconds=max_seconds))

    def set_latency(self, ms: float, path: str | None = None) -> None:
        """Delay every call (or those to path) by ms milliseconds before handling; 0 clears it."""
        with self._lock:
            self._faults.set_latency(ms, path)

    def release_held(self) -> int:
        """End every hold now (late answers go out, withheld ones close); returns how many."""
        return self._holds.release_all()

    def hold(
        self, order: HoldOrder, client: socket.socket | None, stopping: threading.Event | None
    ) -> HoldEnd:
        """Hold a call's connection as order says (run by the server's thread for that call)."""
        ended = self._holds.hold(order.seconds, client=client, stopping=stopping)
        with self._lock:
            call = self._unanswered.get(order.call_id)
            if call is not None:
                self._unanswered[order.call_id] = replace(call, ended=ended.value)
        return ended

    def withhold(
        self,
        path: str,
        fault: Fault,
        body: Mapping[str, Any] | None,
        withheld: Mapping[str, Any] | None,
    ) -> HoldOrder:
        """Record a call a no-answer fault leaves unanswered; the order to hold its connection."""
        deliver = fault.kind is FaultKind.NO_ANSWER
        errcode = None if withheld is None else int(withheld["errcode"])
        call = UnansweredCall(path, deliver, body, errcode, withheld, self.now())
        with self._lock:
            call_id = next(self._call_ids)
            self._unanswered[call_id] = call
        return HoldOrder(fault.seconds, answer=False, call_id=call_id)

    def unanswered(self, *, path: str | None = None) -> list[UnansweredCall]:
        """Calls left without an answer, in order (optionally only those to path)."""
        with self._lock:
            calls = list(self._unanswered.values())
        wanted = normalize_path(path)
        return [call for call in calls if wanted in (None, call.path)]

    def wait_unheld(self, stopping: threading.Event | None, timeout: float = 5.0) -> bool:
        """Wait until no connection held for the server with this stopping event is left."""
        return self._holds.wait_idle(stopping, timeout)

    def answered_late(self, path: str) -> None:
        """Count a call whose answer a late-answer fault delays."""
        with self._lock:
            self._late[path] += 1

    def messages(
        self, *, touser: str | None = None, msgtype: str | None = None
    ) -> list[MessageRecord]:
        """Accepted messages in send order, optionally only those to touser or of msgtype."""
        with self._lock:
            records = list(self._outbox.records.values())
        if touser is not None:
            records = [r for r in records if r.delivered_to(touser)]
        return [r for r in records if msgtype in (None, r.msgtype)]

    def duplicates(self) -> list[DuplicateRecord]:
        """message/send calls enable_duplicate_check kept from delivering again, in order."""
        with self._lock:
            return list(self._outbox.duplicates)

    def set_duplicate_answer(self, answer: DuplicateAnswer) -> None:
        """How to answer a suppressed duplicate: "original" (the first call's answer, the
        default), "new_msgid" (the same with a fresh msgid naming no message) or an errcode."""
        answer = check_duplicate_answer(answer)
        with self._lock:
            self._duplicate_answer = answer

    def updates(self) -> list[UpdateRecord]:
        """Accepted update_template_card calls in order."""
        with self._lock:
            return list(self._outbox.updates)

    def issue_response_code(self, msgid: str) -> str:
        """A new response_code for a sent card, as a user's click callback would carry."""
        with self._lock:
            return self._outbox.issue_code(msgid, self.now())

    def register_aibot_response_code(
        self,
        response_code: str | None = None,
        *,
        chattype: str = "single",
        msgid: str | None = None,
        userid: str | None = None,
        chatid: str | None = None,
    ) -> AibotResponseCode:
        """Issue an AI bot's response_code (a fresh one if None) as a callback into chattype
        carries it; its response_url then works once within 1 h of now()."""
        with self._lock:
            return self._aibot.register(
                response_code,
                chattype=chattype,
                msgid=msgid,
                userid=userid,
                chatid=chatid,
                now=self.now(),
            )

    def _register_ws_code(
        self, code: str, chattype: str, msgid: str, userid: str, chatid: str | None
    ) -> None:
        self.register_aibot_response_code(
            code, chattype=chattype, msgid=msgid, userid=userid, chatid=chatid
        )

    def aibot_response_codes(self) -> list[AibotResponseCode]:
        """The AI-bot response codes issued, in order."""
        with self._lock:
            return list(self._aibot.codes.values())

    def aibot_respond(
        self, response_code: str | None, body: Mapping[str, Any] | ApiError
    ) -> dict[str, Any]:
        """POST to an AI bot's response_url (body, or the ApiError reading it raised)."""
        with self._lock:
            return self._aibot.respond(response_code, body, self.now())

    def aibot_responses(
        self, *, response_code: str | None = None, shown: bool | None = None
    ) -> list[AibotResponseRecord]:
        """Every POST to a response_url in order (refused ones too), optionally only those to
        response_code, or only those the member saw (shown=True) or did not."""
        with self._lock:
            records = list(self._aibot.records)
        return [
            r
            for r in records
            if response_code in (None, r.response_code) and shown in (None, r.shown)
        ]

    def set_aibot_response_policy(
        self, *, second_call: SecondCall | None = None, accept_stream: bool | None = None
    ) -> None:
        """A second POST to a used response_url: "silent" (errcode 0, not shown, the default)
        or that errcode; accept_stream: take a finished stream body (observed, UNCONFIRMED)."""
        with self._lock:
            policy = self._aibot.policy
            if second_call is not None:
                policy = replace(policy, second_call=check_second_call(second_call))
            if accept_stream is not None:
                policy = replace(policy, accept_stream=accept_stream)
            self._aibot.policy = policy

    def add_webhook(self, key: str, name: str = "") -> WebhookRobot:
        """Register a group robot by its key; ValueError if the key is empty or taken."""
        with self._lock:
            return self._webhooks.add(WebhookRobot(key, name))

    def webhooks(self) -> list[WebhookRobot]:
        """The registered group robots."""
        with self._lock:
            return list(self._webhooks.robots.values())

    def webhook_robot(self, key: str | None) -> WebhookRobot:
        """The robot of key; ApiError 93000 when the key is unknown."""
        with self._lock:
            return self._webhooks.robot(key)

    def webhook_send(self, key: str | None, body: Mapping[str, Any] | ApiError) -> dict[str, Any]:
        """webhook/send to the robot of key (body, or the ApiError reading it raised)."""
        with self._lock:
            self._webhooks.send(key, body, self.now())
        return {"errcode": 0, "errmsg": "ok"}

    def webhook_upload(
        self, key: str | None, media_type: str | None, filename: str, data: bytes | None
    ) -> dict[str, Any]:
        """webhook/upload_media for the robot of key; the answer with its media_id."""
        with self._lock:
            media = self._webhooks.upload(key, media_type, filename, data, self.now())
        return {"errcode": 0, "errmsg": "ok", **media.to_json()}

    def webhook_messages(
        self, *, key: str | None = None, shown: bool | None = None
    ) -> list[WebhookRecord]:
        """webhook/send calls to known robots in order (refused ones too), optionally only
        those to key, or only what the group saw (shown=True) or did not."""
        with self._lock:
            records = list(self._webhooks.records)
        return [r for r in records if key in (None, r.key) and shown in (None, r.shown)]

    def set_webhook_policy(
        self, *, per_minute: int | None = None, rate_errcode: int | None = None
    ) -> None:
        """Messages a robot takes per 60 s (20) and the errcode of the one over (45009)."""
        with self._lock:
            self._webhooks.set_policy(per_minute=per_minute, rate_errcode=rate_errcode)

    def stats(self) -> Stats:
        """Counts of calls, errcodes, gettoken per app and message outcomes."""
        with self._lock:
            outbox = self._outbox
            unanswered = self._unanswered.values()
            return Stats(
                calls=dict(self._calls),
                errcodes={path: dict(codes) for path, codes in self._errcodes.items()},
                gettoken=dict(self._gettoken),
                messages=len(outbox.records),
                duplicates=len(outbox.duplicates),
                dropped=outbox.dropped,
                updates=len(outbox.updates),
                recalls=outbox.recalls,
                uploads=len(self._media),
                late=dict(self._late),
                held=self._holds.count(),
                unanswered=dict(Counter(call.path for call in unanswered)),
                lost=dict(Counter(call.path for call in unanswered if not call.deliver)),
                delivered_unanswered=sum(
                    r.delivered and not r.answered for r in outbox.records.values()
                ),
            )

    def begin_call(self, path: str, body: BodyProbe = no_body) -> tuple[float, Fault | None]:
        """Count a call; returns its latency in seconds and the fault to answer with, if any.

        body gives the call's parsed JSON body, for faults that only match some bodies.
        """
        with self._lock:
            self._calls[path] += 1
            return self._faults.latency(path), self._faults.take(path, body)

    def end_call(self, path: str, errcode: int) -> None:
        """Count the errcode a call was answered with."""
        with self._lock:
            self._errcodes.setdefault(path, Counter())[errcode] += 1

    def get_token(self, corpid: str | None, corpsecret: str | None) -> IssuedToken:
        """gettoken: 41002/41004 missing, 40013 unknown corp, 40091/40001 bad secret."""
        with self._lock:
            app = app_for_secret(self._apps.values(), corpid, corpsecret)
            self._gettoken[app.key] += 1
            return self._tokens.issue(app.key, self.now())

    def authenticate(self, access_token: str | None) -> EmulatorApp:
        """The app an access_token belongs to; raises 41001/40014/42001."""
        with self._lock:
            return self._apps[self._tokens.resolve(access_token, self.now())]

    def send(
        self, app: EmulatorApp, body: Mapping[str, Any], *, answered: bool = True
    ) -> dict[str, Any]:
        """message/send for app: check, resolve recipients, deliver or drop, record.

        answered=False: the caller will withhold the answer (recorded on the message).
        """
        with self._lock:
            now = self.now()
            appids = frozenset(
                a for o in self._apps.values() if o.corp_id == app.corp_id for a in o.linked_appids
            )
            ctx = SendContext(app, appids, lambda m: self._media.is_live(m, app.corp_id, now))
            envelope = check_send(body, ctx)
            resolution = resolve(envelope.recipients, app)
            return self._outbox.send(
                app,
                envelope,
                body,
                resolution,
                now,
                answered=answered,
                duplicate_answer=self._duplicate_answer,
            )

    def update_card(self, app: EmulatorApp, body: Mapping[str, Any]) -> dict[str, Any]:
        """message/update_template_card for app."""
        update = parse_update(body)
        if update.agentid != app.agent_id:
            raise ApiError(40056, f"agentid {update.agentid} is not the app of this access_token")
        with self._lock:
            return self._outbox.update(app, update, self.now())

    def recall(self, app: EmulatorApp, body: Mapping[str, Any]) -> dict[str, Any]:
        """message/recall for app."""
        with self._lock:
            self._outbox.recall(app, body.get("msgid"), self.now())
        return {"errcode": 0, "errmsg": "ok"}

    def upload(
        self, app: EmulatorApp, media_type: str | None, filename: str, data: bytes | None
    ) -> MediaRecord:
        """media/upload for app."""
        with self._lock:
            return self._media.upload(app.corp_id, media_type, filename, data, self.now())

    def callback_ips(self) -> list[str]:
        """getcallbackip's ip_list."""
        return list(CALLBACK_IPS)
