"""AibotSide: WeCom's side of an AI bot's HTTP callbacks, pointed at a bot server's URL.

It sends what WeCom sends (verification GETs, encrypted message and event callbacks, stream
refreshes every refresh_interval_s until finish or the window closes), checks every passive
reply against the protocol notes and records what the member saw.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import requests

from .callbacks import DEFAULT_USER, Callbacks, Register, ResponseGrant
from .conversation import Conversation, Ending, MemberView
from .crypto import AibotCrypto
from .envelope import Issue, Sealed, new_nonce, open_reply, seal
from .exchange import Exchange, Verification
from .replies import check_card, check_type, reply_type
from .violations import ProtocolViolation, Violation


@dataclass(frozen=True)
class Retry:
    """Resend a message callback (same plaintext and msgid; new nonce, timestamp, ciphertext).

    Without deliberate, an attempt not answered within after_s is dropped and sent again, up to
    attempts deliveries in all. With deliberate, every attempt is sent, after_s apart, as if
    each earlier answer had been lost on its way back: the member sees the last answer.
    """

    attempts: int = 3
    after_s: float = 5.0
    deliberate: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.after_s < 0:
            raise ValueError("a retry needs attempts >= 1 and after_s >= 0")


def _control_register(base_url: str) -> Register:
    """Register response codes with the emulator serving base_url, over its control API."""
    from callback.devtools.emulator.control import EmulatorControl

    control = EmulatorControl(base_url)

    def register(grant: ResponseGrant) -> None:
        control.register_aibot_response_code(
            grant.response_code,
            chattype=grant.chattype,
            msgid=grant.msgid,
            userid=grant.userid,
            chatid=grant.chatid,
        )

    return register


class _Run:
    """One converse(): the exchanges and violations so far; strict raises at the first."""

    def __init__(self, message: Mapping[str, Any], view: MemberView, strict: bool) -> None:
        self.message = message
        self.view = view
        self.strict = strict
        self.exchanges: list[Exchange] = []
        self.violations: list[Violation] = []
        self.started = time.monotonic()

    def record(self, exchange: Exchange) -> int:
        self.exchanges.append(exchange)
        index = len(self.exchanges) - 1
        for violation in exchange.violations:
            self.add(replace(violation, exchange=index))
        return index

    def issues(self, index: int | None, issues: Iterable[Issue]) -> None:
        for rule, detail in issues:
            self.add(Violation(rule, detail, index))

    def add(self, violation: Violation) -> None:
        self.violations.append(violation)
        if self.strict:
            raise ProtocolViolation(violation, self.result(Ending.ABORTED))

    def result(self, ending: Ending) -> Conversation:
        view = self.view
        return Conversation(
            message=self.message,
            ending=ending,
            stream_id=view.stream_id,
            snapshots=tuple(view.snapshots),
            finished=view.finished,
            feedback_id=view.feedback_id,
            card=view.card,
            images=view.images,
            exchanges=tuple(self.exchanges),
            violations=tuple(self.violations),
            duration_s=time.monotonic() - self.started,
        )


class AibotSide(Callbacks):
    """WeCom talking to one AI bot's callback URL.

    side = AibotSide(url, token, encoding_aes_key, "aibTESTBOT0001", refresh_interval_s=0.05)
    talk = side.converse(side.text("hello"))
    assert talk.finished and talk.final_content == "hi!"

    strict: replies must carry a valid msgsignature, a timestamp and the nonce, and the first
    violation raises ProtocolViolation (an AssertionError naming the rule and its section);
    lenient: envelope fields are optional and violations are only recorded.
    """

    def __init__(
        self,
        url: str,
        token: str,
        encoding_aes_key: str,
        bot_id: str,
        *,
        response_url_base: str | None = None,
        refresh_interval_s: float = 1.0,
        window_s: float = 360.0,
        strict: bool = True,
        clock: Callable[[], float] = time.time,
        user: str = DEFAULT_USER,
        timeout_s: float = 5.0,
        verify_timeout_s: float = 1.0,
        content_type: str = "application/json",
        register: Register | None = None,
        keep_alive: bool = True,
    ) -> None:
        if register is None and response_url_base is not None:
            register = _control_register(response_url_base)
        super().__init__(
            bot_id, user=user, response_url_base=response_url_base, register=register, clock=clock
        )
        self.url = url
        self.crypto = AibotCrypto.create(token, encoding_aes_key)
        self.refresh_interval_s = refresh_interval_s
        self.window_s = window_s
        self.strict = strict
        self.timeout_s = timeout_s
        self.verify_timeout_s = verify_timeout_s
        self.content_type = content_type
        self.keep_alive = keep_alive  # False: a new connection per request, as a new client
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    # -- transport ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if not self.keep_alive:
                session.headers["Connection"] = "close"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close the HTTP sessions of every thread."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> AibotSide:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self,
        fields: Mapping[str, Any],
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        random_prefix: bytes | None = None,
    ) -> Sealed:
        """The POST WeCom would send for this plaintext (query and body), without sending it."""
        timestamp = str(int(self.clock())) if timestamp is None else timestamp
        nonce = new_nonce() if nonce is None else nonce
        return seal(
            self.crypto, fields, timestamp=timestamp, nonce=nonce, random_prefix=random_prefix
        )

    def post(
        self,
        fields: Mapping[str, Any],
        *,
        kind: str = "message",
        timeout_s: float | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> Exchange:
        """POST one callback and open its reply; only HTTP and envelope rules are checked."""
        sealed = self.request(fields, timestamp=timestamp, nonce=nonce)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        sent_at, start = self.clock(), time.monotonic()

        def outcome(
            status: int | None,
            body: bytes = b"",
            reply: Mapping[str, Any] | None = None,
            violations: Iterable[Violation] = (),
            *,
            timed_out: bool = False,
            error: str | None = None,
        ) -> Exchange:
            return Exchange(
                kind=kind,
                request=fields,
                query=sealed.query,
                sent_at=sent_at,
                elapsed_s=time.monotonic() - start,
                status=status,
                body=body,
                reply=reply,
                timed_out=timed_out,
                error=error,
                violations=tuple(violations),
            )

        try:
            response = self._session().post(
                self.url,
                params=sealed.query,
                data=sealed.body,
                headers={"Content-Type": self.content_type},
                timeout=timeout,
            )
        except requests.Timeout:
            late = Violation("http.timeout", f"no answer to a {kind} within {timeout:g} s")
            return outcome(None, violations=[late], timed_out=True)
        except requests.RequestException as error:
            failed = Violation("http.connect", f"{type(error).__name__}: {error}")
            return outcome(None, violations=[failed], error=str(error))
        status, body = response.status_code, response.content
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            late = Violation("http.timeout", f"a {kind} answered after {elapsed:.2f} s")
            return outcome(status, body, violations=[late], timed_out=True)
        opened = open_reply(self.crypto, status, body, sealed.nonce, strict=self.strict)
        issues = [Violation(rule, detail) for rule, detail in opened.issues]
        return outcome(status, body, opened.reply, issues)

    # -- URL verification -------------------------------------------------------------------------

    def verify(
        self,
        echo: str | None = None,
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        random_prefix: bytes | None = None,
    ) -> Verification:
        """The URL-verification GET (§2.2): the answer must be exactly echo, within 1 s."""
        echo = echo or str(10**15 + secrets.randbelow(9 * 10**15))
        encrypted = self.crypto.encrypt(echo.encode(), random_prefix)
        timestamp = str(int(self.clock())) if timestamp is None else timestamp
        nonce = new_nonce() if nonce is None else nonce
        query = {
            "msg_signature": self.crypto.sign(timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": encrypted,
        }
        start = time.monotonic()
        status: int | None = None
        body = b""
        violations: list[Violation] = []
        try:
            response = self._session().get(self.url, params=query, timeout=self.verify_timeout_s)
            status, body = response.status_code, response.content
        except requests.Timeout:
            violations.append(Violation("verify.timeout", "no answer within 1 s"))
        except requests.RequestException as error:
            violations.append(Violation("http.connect", f"{type(error).__name__}: {error}"))
        elapsed = time.monotonic() - start
        if status is not None:
            if elapsed > self.verify_timeout_s:
                violations.append(Violation("verify.timeout", f"answered after {elapsed:.2f} s"))
            if status != 200 or body != echo.encode():
                detail = f"HTTP {status} with {body[:80]!r}, expected {echo.encode()!r}"
                violations.append(Violation("verify.echo", detail))
        result = Verification(echo, query, elapsed, status, body, tuple(violations))
        if self.strict and violations:
            raise ProtocolViolation(violations[0])
        return result

    # -- messages -------------------------------------------------------------------------------

    def converse(self, message: Mapping[str, Any], *, retry: Retry | None = None) -> Conversation:
        """Deliver a message callback and follow its stream as WeCom does; what the member saw."""
        view = MemberView()
        run = _Run(message, view, self.strict)
        answer = self._deliver(run, message, retry)
        if answer is None:
            return run.result(Ending.NO_ANSWER)
        deadline = run.started + self.window_s
        while view.streaming:
            if time.monotonic() + self.refresh_interval_s >= deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                detail = f"no finish within {self.window_s:g} s of the message"
                run.issues(None, [("stream.window", detail)])
                return run.result(Ending.WINDOW_CLOSED)
            time.sleep(self.refresh_interval_s)
            assert view.stream_id is not None
            exchange = self.post(self.refresh(message, view.stream_id), kind="refresh")
            index = run.record(exchange)
            if (
                exchange.answered
                and exchange.status == 200
                and not (exchange.reply is None and exchange.violations)
            ):
                run.issues(index, view.refresh_reply(exchange.reply))
        if view.finished:
            return run.result(Ending.FINISHED)
        if view.card is not None:
            return run.result(Ending.CARD)
        if answer.reply is None:
            return run.result(Ending.NO_ANSWER if answer.violations else Ending.NO_REPLY)
        return run.result(Ending.BROKEN)

    def _deliver(
        self, run: _Run, message: Mapping[str, Any], retry: Retry | None
    ) -> Exchange | None:
        """Send the message (and its retries); show the answer WeCom goes on with."""
        attempts = 1 if retry is None else retry.attempts
        deliberate = retry is not None and retry.deliberate
        timeout = self.timeout_s if retry is None or deliberate else retry.after_s
        answered: list[tuple[int, Exchange]] = []
        for attempt in range(attempts):
            if attempt:
                assert retry is not None
                due = run.started + attempt * retry.after_s
                time.sleep(max(0.0, due - time.monotonic()))
            exchange = self.post(message, kind="message", timeout_s=timeout)
            index = run.record(exchange)
            if exchange.answered:
                answered.append((index, exchange))
                if not deliberate:
                    break
        if not answered:
            return None
        *earlier, (index, answer) = answered
        previous: str | None = None
        for earlier_index, exchange in earlier:
            scratch = MemberView()
            run.issues(earlier_index, scratch.first_reply(exchange.reply))
            previous = scratch.stream_id or previous
        if answer.status == 200 and not (answer.reply is None and answer.violations):
            run.issues(index, run.view.first_reply(answer.reply))
        if previous is not None:
            shown = run.view.stream_id
            if answer.reply is None:
                run.issues(index, [("dedup.lost", f"no reply to a repeat of stream {previous!r}")])
            elif shown is not None and shown != previous:
                detail = f"the repeat started stream {shown!r}, the first reply {previous!r}"
                run.issues(index, [("dedup.same_stream", detail)])
        return answer

    def converse_many(
        self,
        messages: Iterable[Mapping[str, Any]],
        *,
        retry: Retry | None = None,
        max_workers: int = 8,
    ) -> list[Conversation]:
        """Many conversations at once (one thread each, up to max_workers), in input order."""
        with ThreadPoolExecutor(max_workers, thread_name_prefix="aibot-side") as pool:
            futures = [pool.submit(self.converse, message, retry=retry) for message in messages]
            return [future.result() for future in futures]

    # -- events ---------------------------------------------------------------------------------

    def enter_chat(self, event: Mapping[str, Any] | None = None) -> Exchange:
        """Send enter_chat once; the answer may be a welcome text, a template_card or nothing."""
        return self._send_event(event or self.enter_chat_event(), "enter_chat")

    def card_event(self, event: Mapping[str, Any]) -> Exchange:
        """Send a template_card_event once, 5 s, no retry (§2.10); answer: card update or none."""
        return self._send_event(event, "template_card_event")

    def feedback(self, event: Mapping[str, Any]) -> Exchange:
        """Send a feedback_event once; only no reply is allowed."""
        return self._send_event(event, "feedback_event")

    def _send_event(self, event: Mapping[str, Any], kind: str) -> Exchange:
        if event.get("msgtype") != "event" or event.get("event", {}).get("eventtype") != kind:
            raise ValueError(f"not a {kind} callback")
        exchange = self.post(event, kind=kind)
        issues: list[Issue] = []
        if exchange.answered and not (exchange.reply is None and exchange.violations):
            issues = check_type(kind, exchange.reply)
            if not issues and exchange.reply is not None:
                issues = _event_reply(kind, event, exchange.reply)
        extra = tuple(Violation(rule, detail) for rule, detail in issues)
        exchange = replace(exchange, violations=exchange.violations + extra)
        if self.strict and exchange.violations:
            raise ProtocolViolation(exchange.violations[0], exchange=exchange)
        return exchange


def _event_reply(kind: str, event: Mapping[str, Any], reply: Mapping[str, Any]) -> list[Issue]:
    """Field rules of an allowed event reply: welcome text/card, or the card update."""
    found = reply_type(reply)
    if found == "text":
        text = reply.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        return [] if isinstance(content, str) else [("text.content", f"text is {text!r}")]
    if found == "template_card":
        return check_card(reply.get("template_card"))[1]
    issues: list[Issue] = []
    if "msgtype" in reply:
        issues.append(("update.msgtype", f"msgtype {reply['msgtype']!r} set too"))
    userids = reply.get("userids")
    if userids is not None and not (
        isinstance(userids, list) and all(isinstance(u, str) for u in userids)
    ):
        issues.append(("update.userids", f"userids is {userids!r}"))
    card = reply.get("template_card")
    issues += check_card(card)[1]
    wanted = event["event"][kind].get("task_id")
    task_id = card.get("task_id") if isinstance(card, dict) else None
    if task_id != wanted:
        issues.append(("card.task_id", f"task_id {task_id!r}, the event's is {wanted!r}"))
    return issues
