"""Timed delivery: posts callbacks with WeCom's timing, so tests see what the member would see.

Written from the protocol notes (wecom-protocol.md §1 item 7, §3.7), not from our server's code, so
it can catch the server's mistakes: each attempt waits `attempt_timeout_s` (5 s) for a 200, a miss
or a non-200 sends a fresh, re-encrypted copy, 3 attempts in all, and a passive reply counts only
if the whole answer arrived inside its attempt's window.

    td = TimedDelivery(url, sim)
    got = td.deliver(sim.text("hi"))
    assert got.answered_in_time and got.passive is not None
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import requests
import urllib3

from callback.devtools.emulator import Emulator, EmulatorControl, MessageRecord
from callback.devtools.simulator import Simulator
from callback.errors import WecomError

Fields = Mapping[str, Any] | bytes


@dataclass(frozen=True)
class Attempt:
    """One POST: WeCom's window is [started_at, started_at + timeout]; `counted` = a 200 inside it.

    `sent_at` > `started_at` only for a delayed original (the request sat in a proxy); its late
    answer is still recorded, but never counted.
    """

    number: int
    started_at: float
    query: Mapping[str, str]
    request_body: bytes
    sent_at: float
    ended_at: float  # answer, error or timeout
    answered_at: float | None = None
    status: int | None = None
    body: bytes = b""
    counted: bool = False
    reply: bytes | None = None  # the decrypted passive reply of any 200 with a body
    error: str | None = None  # no answer (timeout, connection), or a reply that would not open


@dataclass(frozen=True)
class Delivered:
    """All attempts of one callback; at most one counts (the first 200 in its window ends it)."""

    attempts: tuple[Attempt, ...]

    @property
    def counted(self) -> Attempt | None:
        return next((a for a in self.attempts if a.counted), None)

    @property
    def passive(self) -> bytes | None:
        """The passive reply plaintext the member saw, if any."""
        return self.counted.reply if self.counted else None

    @property
    def answered_in_time(self) -> bool:
        return self.counted is not None

    @property
    def attempts_sent(self) -> int:
        return len(self.attempts)


class TimedDelivery:
    """Delivers callbacks to `url` as WeCom does; `clock` (real seconds) stamps the records."""

    def __init__(
        self,
        url: str,
        simulator: Simulator,
        *,
        attempt_timeout_s: float = 5.0,
        attempts: int = 3,
        retry_gap_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.simulator, self.clock = url, simulator, clock
        self.timeout, self.attempts, self.gap = attempt_timeout_s, attempts, retry_gap_s

    def deliver(
        self, fields: Fields, *, delay_first_s: float = 0.0, as_json: bool = False
    ) -> Delivered:
        """Deliver one callback; attempt 1 reaches the server `delay_first_s` late (a backlog)."""
        sent: list[tuple[Attempt, Future[Attempt]]] = []
        counted = 0
        for number in range(1, self.attempts + 1):
            started_at = self.clock()
            query, body = self.simulator.post(fields, as_json=as_json)  # a fresh copy every time
            stub = Attempt(number, started_at, query, body, sent_at=started_at, ended_at=started_at)
            future: Future[Attempt] = Future()
            delay = delay_first_s if number == 1 else 0.0
            threading.Thread(target=self._send, args=(stub, delay, future), daemon=True).start()
            sent.append((stub, future))
            window_end = started_at + self.timeout
            try:  # decided when the window ends: whatever comes later is too late
                done: Attempt | None = future.result(max(0.0, window_end - self.clock()))
            except TimeoutError:
                done = None
            if done and done.status == 200 and done.ended_at <= window_end:
                counted = number
                break
            failed_at = min(done.ended_at, window_end) if done else window_end
            if number < self.attempts:
                time.sleep(max(0.0, failed_at + self.gap - self.clock()))
        bound = delay_first_s + 3 * self.timeout + 1.0  # connect + headers + one read, see _post
        outcomes = (self._outcome(stub, future, bound) for stub, future in sent)
        return Delivered(tuple(replace(a, counted=a.number == counted) for a in outcomes))

    def deliver_many(
        self, many: Sequence[Fields], *, concurrency: int = 16, as_json: bool = False
    ) -> list[Delivered]:
        """A burst: deliver every callback, `concurrency` at once; results in input order."""
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(lambda f: self.deliver(f, as_json=as_json), many))

    def _outcome(self, stub: Attempt, future: Future[Attempt], timeout: float) -> Attempt:
        try:
            return future.result(timeout)
        except TimeoutError:  # only a server trickling its headers can hold a thread this long
            return replace(stub, ended_at=self.clock(), error=f"still running after {timeout} s")

    def _send(self, stub: Attempt, delay: float, future: Future[Attempt]) -> None:
        try:
            future.set_result(self._attempt(stub, delay))
        except Exception as exc:  # a bug here must surface in deliver(), not hang it
            future.set_exception(exc)

    def _attempt(self, stub: Attempt, delay: float) -> Attempt:
        time.sleep(delay)
        sent_at = self.clock()
        status: int | None = None
        answer, reply, error = b"", None, None
        try:  # the connection that carries it waits its own full timeout (a proxy's, for a delay)
            status, answer = self._post(stub.query, stub.request_body, sent_at + self.timeout)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = self.clock()
        if status == 200 and answer.strip():
            try:
                reply = self.simulator.open_reply(answer) or None
            except (WecomError, KeyError, ValueError, TypeError) as exc:
                error = f"reply does not open: {type(exc).__name__}: {exc}"
        answered_at = now if status is not None else None
        return replace(
            stub, sent_at=sent_at, ended_at=now, answered_at=answered_at, status=status,
            body=answer, reply=reply, error=error,
        )  # fmt: skip

    def _post(self, query: Mapping[str, str], body: bytes, deadline: float) -> tuple[int, bytes]:
        """POST and read the whole answer, giving up at `deadline`; every socket wait is bounded."""
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise TimeoutError("no time left to send")
        with requests.post(
            self.url, params=query, data=body, timeout=remaining, stream=True,
            headers={"Content-Type": "text/xml" if body[:1] == b"<" else "application/json"},
        ) as response:  # fmt: skip
            read = getattr(response.raw, "read1", response.raw.read)  # read1 = one recv at most
            chunks = []
            while chunk := read(4096, decode_content=True):
                chunks.append(chunk)
                if self.clock() > deadline:  # a trickle must not outlive the deadline
                    raise TimeoutError("answer still arriving at the deadline")
            return response.status_code, b"".join(chunks)


@dataclass(frozen=True)
class MemberView:
    """What one member saw: passive replies that counted, and messages pushed to them."""

    passive: tuple[str, ...]
    pushed: tuple[str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        """Both channels (passive first); compare as a multiset to check "exactly once"."""
        return self.passive + self.pushed


def member_view(
    member: str, deliveries: Iterable[Delivered], emulator: Emulator | EmulatorControl
) -> MemberView:
    """Counted passive replies addressed to `member` plus what the send API delivered to them.

    A text shows as its content, anything else as "[msgtype]".
    """
    passive = []
    for delivered in deliveries:
        if delivered.passive is not None:
            root = ET.fromstring(delivered.passive)  # noqa: S314 (from the server under test)
            if (root.findtext("ToUserName") or "").lower() == member.lower():
                kind = root.findtext("MsgType") or ""
                passive.append((root.findtext("Content") or "") if kind == "text" else f"[{kind}]")
    pushed = []
    for record in emulator.messages(touser=member):
        if isinstance(record, MessageRecord):
            kind, body = record.msgtype, record.body
        else:
            kind, body = record["msgtype"], record["body"]
        content = body.get(kind)
        text = content.get("content") if isinstance(content, Mapping) else None
        pushed.append(text if isinstance(text, str) else f"[{kind}]")
    return MemberView(tuple(passive), tuple(pushed))
