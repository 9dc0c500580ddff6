"""WecomClient: the WeCom send API with shared tokens, safe retries and per-member rate windows."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from callback import errcodes
from callback.config import AppSettings
from callback.errors import (
    ApiError,
    ConfigError,
    LeaseLost,
    NoAnswer,
    RateLimited,
    Unreachable,
    ValidationError,
    WecomError,
)
from callback.metrics import Metrics
from callback.outbound import Message, Recall, Recipients, UpdateTemplateCard, build_send_bodies
from callback.outbound.tokens import TokenCache, TokenPolicy
from callback.store import Store

#: WeCom silently drops messages to a member beyond these, per app: (window s, most messages).
MEMBER_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 30), (3600.0, 1000))
#: How long after its first attempt a logical send may still be attempted (the outbox's limit).
RETRY_HORIZON_S = 24 * 3600.0

#: Called before every request of a call; False stops the call (raises LeaseLost): the outbox
#: passes one that renews its lease on the item, so two senders never send one item.
Fence = Callable[[], bool]


def recipients_of(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The members a message/send body names (none for @all: WeCom's windows can't be kept)."""
    users = str(body.get("touser", ""))
    return () if users == "@all" else tuple(u for u in users.split("|") if u)


def _ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return tuple(v for v in str(value or "").split("|") if v)


@dataclass(frozen=True)
class SendResult:
    """What message/send answered; `msgids` lists every part of a split text. `queued`: the
    send is in the outbox, waiting for a rate window or a retry (no msgid yet)."""

    msgid: str
    response_code: str = ""
    invalid_users: tuple[str, ...] = ()
    invalid_parties: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()
    unlicensed_users: tuple[str, ...] = ()
    msgids: tuple[str, ...] = ()
    queued: bool = False

    @classmethod
    def of(cls, data: Mapping[str, Any], msgids: Sequence[str] = ()) -> SendResult:
        msgid = str(data.get("msgid", ""))
        return cls(
            msgid=msgid,
            response_code=str(data.get("response_code", "")),
            invalid_users=_ids(data.get("invaliduser")),
            invalid_parties=_ids(data.get("invalidparty")),
            invalid_tags=_ids(data.get("invalidtag")),
            unlicensed_users=_ids(data.get("unlicenseduser")),
            msgids=tuple(msgids) or (msgid,),
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, jittered exponential backoff: attempt n waits up to min(cap, base * 2**n)."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


MAYBE_DELIVERED = "the request may have been delivered"


def failed_exchange(
    exc: requests.RequestException, what: str, base: str, timeout_s: float, maybe: str
) -> WecomError:
    """A request to WeCom (API base URL `base`) that failed, as the outbox acts on it: nothing
    left (Unreachable), it may have arrived (NoAnswer; `maybe` says so), an unusable URL
    (ConfigError). Never requests' own text: it quotes the URL with its secret, token or key."""
    kind = type(exc).__name__
    if isinstance(exc, requests.ConnectionError):
        if never_sent(exc):  # refused, no route, no DNS answer
            return Unreachable(f"{what}: no connection to {base} ({kind})")
        return NoAnswer(f"{what}: the connection was lost before WeCom answered ({kind}); {maybe}")
    if isinstance(exc, requests.Timeout):
        return NoAnswer(f"{what}: no answer within {timeout_s:g} s; {maybe}")
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return ConfigError(
            f"{what}: the API base URL {base!r} is not usable ({kind}); check api_base_url"
        )
    return NoAnswer(f"{what}: the exchange with WeCom broke off ({kind}); {maybe}")  # e.g. cut off


def never_sent(exc: requests.ConnectionError) -> bool:
    """Whether a connection error happened before the request went out (connect failed)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class WecomClient:
    """Calls the WeCom API as the configured applications. Thread-safe; share one per process."""

    def __init__(
        self,
        apps: Mapping[str, AppSettings],
        store: Store,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        member_limits: Sequence[tuple[float, int]] = MEMBER_LIMITS,
        metrics: Metrics | None = None,
    ) -> None:
        self.apps = apps
        self.store = store
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = retry
        self.sleep = sleep
        self.member_limits = tuple(member_limits)
        self.metrics = metrics or Metrics(enabled=False)
        #: How long the marker of a sent body lives (see `_first_attempt`), beyond its interval.
        self.retry_horizon_s = RETRY_HORIZON_S
        slowest = self.longest_call_s() + 5.0  # the refresh lock outlives the slowest gettoken
        policy = TokenPolicy(lock_ttl_s=slowest, wait_s=slowest)
        self.tokens = TokenCache(store, self._fetch_token, policy=policy, sleep=sleep)

    def longest_call_s(self) -> float:
        """The longest one API call may take with its retries: every attempt timing out, and
        the longest wait between them."""
        connect, read = self.timeout
        waits = sum(
            min(self.retry.cap_s, self.retry.base_s * 2**n) for n in range(self.retry.attempts - 1)
        )
        return float(self.retry.attempts * (connect + read) + waits)

    def app(self, name: str) -> AppSettings:
        settings = self.apps.get(name)
        if settings is None:
            known = ", ".join(self.apps) or "none"
            raise ConfigError(f"no application {name!r} is configured (known: {known})")
        if not settings.secret:
            raise ConfigError(f"apps.{name}.secret: missing; sending needs the app's Secret")
        return settings

    # -- HTTP -----------------------------------------------------------------------------------

    def _http(self, app: AppSettings, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return self._request(method, f"{app.api_base_url}/cgi-bin/{path}", path, **kw)

    def _request(self, method: str, url: str, path: str, **kw: Any) -> dict[str, Any]:
        """One request. No connection: Unreachable. Sent but not answered (a timeout, a lost
        connection, an HTTP 5xx): NoAnswer, since WeCom may have acted on it."""
        host = url.split("/cgi-bin/")[0]
        # `from None` throughout: requests' own errors quote the URL, whose query holds the
        # corp secret (gettoken) or the access token
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise failed_exchange(exc, path, host, self.timeout[1], MAYBE_DELIVERED) from None
        if response.status_code >= 500:
            raise NoAnswer(f"{path}: HTTP {response.status_code}; {MAYBE_DELIVERED}")
        try:
            data = response.json()
        except ValueError:
            raise ApiError(-1, f"HTTP {response.status_code}, not JSON", path) from None
        if not isinstance(data, dict):
            raise ApiError(-1, "answer is not a JSON object", path)
        return data

    def _fetch_token(self, app: AppSettings) -> tuple[str, int]:
        params = {"corpid": app.corp_id, "corpsecret": app.secret}
        self.metrics.token_fetch(app.name)
        data = self._with_retries(lambda: self._http(app, "GET", "gettoken", params=params))
        code = int(data.get("errcode", 0))
        if code:
            raise ApiError(code, str(data.get("errmsg", "")), "gettoken", app=app.name)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    def _with_retries(
        self, attempt: Callable[[], dict[str, Any]], retry: bool = True, fence: Fence | None = None
    ) -> dict[str, Any]:
        """Run `attempt` up to the retry policy's number of times, each after `fence` allows
        it. Failures where WeCom surely did nothing (no connection, a busy errcode) are always
        tried again; an unanswered request only when `retry` says a repeat is harmless. A
        NoAnswer raised carries `replayable`, that same verdict, for the outbox."""
        tries = self.retry.attempts
        for n in range(tries):
            last = n == tries - 1
            if fence is not None and not fence():
                raise LeaseLost("the lease on this send passed to another sender")
            try:
                data = attempt()
            except Unreachable:
                if last:
                    raise
            except NoAnswer as exc:
                if last or not retry:
                    exc.replayable = retry
                    raise
            else:
                if int(data.get("errcode", 0)) not in errcodes.TRANSIENT or last:
                    return data
            self.sleep(self.retry.delay(n))
        raise AssertionError("unreachable")  # pragma: no cover

    def call(
        self,
        app: str,
        method: str,
        path: str,
        *,
        retry: bool,
        fence: Fence | None = None,
        params: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """One API call with the app's token: a rejected token is dropped, fetched and replayed
        once; failures are tried again, an unanswered request only when `retry` says a repeat
        is harmless, and every request only after `fence` allows it (see `_with_retries`)."""
        settings = self.app(app)
        for replay in (False, True):
            token = self.tokens.get(settings)
            query = {"access_token": token, **(params or {})}
            attempt = functools.partial(self._http, settings, method, path, params=query, **kw)
            data = self._with_retries(attempt, retry, fence)
            code = int(data.get("errcode", 0))
            if code in errcodes.TOKEN_REJECTED and not replay:
                self.tokens.invalidate(settings, token)
                continue
            if code:
                self.metrics.send_error(path, code)
                raise ApiError(code, str(data.get("errmsg", "")), path, app=app)
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the API --------------------------------------------------------------------------------

    def reserve(self, app: str, users: Sequence[str], count: int = 1) -> None:
        """Take `count` sends for every member from the per-member windows, all or none;
        raise RateLimited (taking nothing) saying when they may go, if a window is full."""
        settings = self.app(app)
        keys = [f"rate:{settings.corp_id}:{settings.agent_id}:{u.lower()}" for u in users]
        wait = self.store.reserve(keys, self.member_limits, count) if keys else 0.0
        if wait > 0:
            self.metrics.rate_limit_wait(app)
            raise RateLimited(
                f"app {app!r}: a recipient's WeCom rate window (30/min, 1000/h) is full; "
                f"this send may go in {wait:.0f} s",
                retry_after=wait,
            )

    def send(
        self,
        app: str,
        message: Message,
        to: Recipients | str | Sequence[str],
        *,
        duplicate_check: bool = True,
        duplicate_check_interval: int = 1800,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> SendResult:
        """Send an app message (text over 2048 bytes goes as several messages, in order).

        With `duplicate_check` (WeCom's enable_duplicate_check, the default) transient failures
        are retried, since WeCom will not deliver the same body twice; without it, never. A
        deliberate repeat of a body within the interval goes without the check (and without
        retries) so that WeCom delivers it; pass the same `idempotency_key` when re-attempting
        one logical send (the outbox does) so that WeCom de-duplicates it instead.
        Raises RateLimited, without sending, if a member's 30/min or 1000/h window is full."""
        bodies = self.bodies(
            app,
            message,
            to,
            duplicate_check=duplicate_check,
            duplicate_check_interval=duplicate_check_interval,
            **options,
        )
        most = min(limit for _, limit in self.member_limits)
        if len(bodies) > most:
            raise ValidationError(
                f"text.content: needs {len(bodies)} messages of 2048 bytes, and at most {most} "
                "go to a member within WeCom's rate window; send it with ctx.send (the outbox "
                "waits for the window) or shorten it",
                field="text.content", value=len(bodies), limit=f"at most {most} messages",
            )  # fmt: skip
        self.reserve(app, recipients_of(bodies[0]), len(bodies))
        send_id = idempotency_key or uuid.uuid4().hex
        results = [self.send_body(app, body, f"{send_id}:{n}") for n, body in enumerate(bodies)]
        return SendResult.of(results[0], [str(r.get("msgid", "")) for r in results])

    def bodies(
        self,
        app: str,
        message: Message,
        to: Recipients | str | Sequence[str],
        *,
        duplicate_check: bool = True,
        **options: Any,
    ) -> tuple[dict[str, Any], ...]:
        """The validated message/send bodies for `message` (several for a long text)."""
        recipients = to if isinstance(to, Recipients) else Recipients.of(to)
        agent_id = self.app(app).agent_id
        return build_send_bodies(
            message, recipients, agent_id, enable_duplicate_check=duplicate_check, **options
        )

    def send_body(
        self, app: str, body: Mapping[str, Any], send_id: str, *, fence: Fence | None = None
    ) -> dict[str, Any]:
        """POST one prepared message/send body; `send_id` names the logical send (see `send`).
        Only a body sent with WeCom's duplicate check is sent again after no answer."""
        settings = self.app(app)
        retry = bool(body.get("enable_duplicate_check")) and self._first_attempt(
            settings, body, send_id, int(body.get("duplicate_check_interval", 1800))
        )
        if body.get("enable_duplicate_check") and not retry:
            # a deliberate repeat: WeCom's check would swallow it
            body = {k: v for k, v in body.items() if k != "duplicate_check_interval"}
            body["enable_duplicate_check"] = 0
        return self.call(app, "POST", "message/send", json=body, retry=retry, fence=fence)

    def _first_attempt(
        self, app: AppSettings, body: Mapping[str, Any], send_id: str, interval: int
    ) -> bool:
        """Whether `send_id` is the first to send this exact body within the dedup interval.

        WeCom's duplicate check would silently swallow a deliberate repeat of the same body (or
        two identical parts of a split text), so only the first sender of a body gets it. The
        marker lives as long as that send may still be attempted (`retry_horizon_s`), so that a
        late retry never finds it gone, taken by another send, and goes out unchecked."""
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
        key = f"sent:{app.corp_id}:{app.agent_id}:{hashlib.sha256(canonical).hexdigest()}"
        ttl = self.retry_horizon_s + interval
        return self.store.setdefault(key, send_id, ttl) == send_id

    def post_url(
        self, url: str, body: Mapping[str, Any], *, fence: Fence | None = None
    ) -> dict[str, Any]:
        """POST plain JSON to a one-off URL with no token (an AI bot's response_url). A repeat
        is harmless (WeCom shows one post per URL), so no answer is tried again."""
        attempt = functools.partial(self._request, "POST", url, "aibot/response", json=body)
        data = self._with_retries(attempt, True, fence)
        code = int(data.get("errcode", 0))
        if code:
            self.metrics.send_error("aibot/response", code)
            raise ApiError(code, str(data.get("errmsg", "")), "aibot/response")
        return data

    def update_template_card(self, app: str, update: UpdateTemplateCard) -> dict[str, Any]:
        """Update a sent card with its single-use response_code."""
        body = update.body(self.app(app).agent_id)
        return self.call(app, "POST", "message/update_template_card", json=body, retry=False)

    def recall(self, app: str, msgid: str) -> None:
        """Recall a message sent within the last 24 hours."""
        self.call(app, "POST", "message/recall", json=Recall(msgid).body(), retry=True)

    def upload_media(self, app: str, kind: str, filename: str, data: bytes) -> str:
        """Upload temporary media (3 days); returns its media_id."""
        files = {"media": (filename, data)}
        result = self.call(
            app, "POST", "media/upload", params={"type": kind}, files=files, retry=True
        )
        return str(result["media_id"])

    def callback_ips(self, app: str) -> tuple[str, ...]:
        """The IP ranges WeCom sends callbacks from."""
        return tuple(self.call(app, "GET", "getcallbackip", retry=True).get("ip_list", []))
