"""EmulatorControl: a small requests client for the emulator's /_emulator/ control API."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests

from .aibot_responses import SecondCall
from .aibot_ws.control_client import AibotWsControl
from .apps import EmulatorApp
from .faults import DEFAULT_MAX_HOLD, CallMatch
from .records import DuplicateAnswer


def _match_json(match: CallMatch | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(match, CallMatch):
        return match.to_json()
    return None if match is None else dict(match)


class EmulatorControl(AibotWsControl):
    """Drive an emulator running in another process or thread.

    control = EmulatorControl("http://127.0.0.1:8090")
    assert control.messages(touser="zhangsan")[0]["msgtype"] == "miniprogram_notice"
    """

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, session: requests.Session | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/_emulator/{path}"
        response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=payload or {})

    def messages(
        self, *, touser: str | None = None, msgtype: str | None = None
    ) -> list[dict[str, Any]]:
        """Accepted message records (JSON form of MessageRecord), optionally filtered."""
        params = {k: v for k, v in (("touser", touser), ("msgtype", msgtype)) if v is not None}
        records: list[dict[str, Any]] = self._call("GET", "messages", params=params)
        return records

    def wait_for_messages(
        self, count: int, *, touser: str | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll until at least count messages (to touser) are recorded; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.messages(touser=touser)
            if len(records) >= count:
                return records
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(records)} of {count} messages after {timeout} s")
            time.sleep(0.05)

    def duplicates(self) -> list[dict[str, Any]]:
        """Sends the duplicate check kept from delivering again (JSON form of DuplicateRecord)."""
        records: list[dict[str, Any]] = self._call("GET", "duplicates")
        return records

    def set_duplicate_answer(self, answer: DuplicateAnswer) -> None:
        """Answer suppressed duplicates with "original", "new_msgid" or an errcode."""
        self._post("duplicate_answer", {"answer": answer})

    def updates(self) -> list[dict[str, Any]]:
        """Accepted update_template_card records."""
        records: list[dict[str, Any]] = self._call("GET", "updates")
        return records

    def stats(self) -> dict[str, Any]:
        """Call counts per path, errcodes per path, gettoken per "corp/agent", outcomes."""
        stats: dict[str, Any] = self._call("GET", "stats")
        return stats

    def apps(self) -> list[dict[str, Any]]:
        """The registered apps."""
        apps: list[dict[str, Any]] = self._call("GET", "apps")
        return apps

    def add_app(self, app: EmulatorApp) -> None:
        """Register another app."""
        self._post("apps", app.to_json())

    def revoke_tokens(self) -> int:
        """Invalidate every token (then 40014); returns how many."""
        return int(self._post("tokens/revoke")["revoked"])

    def expire_tokens(self) -> int:
        """Expire every token (then 42001); returns how many."""
        return int(self._post("tokens/expire")["expired"])

    def fail(
        self,
        count: int = 1,
        *,
        errcode: int | None = None,
        http_status: int | None = None,
        path: str | None = None,
        match: CallMatch | Mapping[str, Any] | None = None,
    ) -> None:
        """Answer the next count calls (to path, whose body matches) with errcode or a status."""
        payload: dict[str, Any] = {"count": count, "path": path, "match": _match_json(match)}
        payload |= {"errcode": errcode, "http_status": http_status}
        self._post("fail", payload)

    def late_answer(
        self,
        count: int = 1,
        *,
        ms: float,
        path: str | None = None,
        match: CallMatch | Mapping[str, Any] | None = None,
    ) -> None:
        """Handle the next count calls (to path, matching) at once, answer each ms later."""
        payload = {"count": count, "ms": ms, "path": path, "match": _match_json(match)}
        self._post("late_answer", payload)

    def no_answer(
        self,
        count: int = 1,
        *,
        deliver: bool,
        path: str | None = None,
        match: CallMatch | Mapping[str, Any] | None = None,
        max_seconds: float = DEFAULT_MAX_HOLD,
    ) -> None:
        """Never answer the next count calls; deliver=True handles them first, False loses them."""
        payload: dict[str, Any] = {"count": count, "deliver": deliver, "path": path}
        payload |= {"match": _match_json(match), "max_seconds": max_seconds}
        self._post("no_answer", payload)

    def unanswered(self, *, path: str | None = None) -> list[dict[str, Any]]:
        """Calls left without an answer (JSON form of UnansweredCall), optionally to path."""
        params = {} if path is None else {"path": path}
        calls: list[dict[str, Any]] = self._call("GET", "unanswered", params=params)
        return calls

    def release_held(self) -> int:
        """End every held connection now (late answers go out); returns how many."""
        return int(self._post("release_held")["released"])

    def set_latency(self, ms: float, path: str | None = None) -> None:
        """Delay calls (to path) by ms milliseconds; 0 clears."""
        self._post("latency", {"ms": ms, "path": path})

    def advance(self, seconds: float) -> float:
        """Move the emulator's clock forward; returns its new time."""
        return float(self._post("clock/advance", {"seconds": seconds})["now"])

    def now(self) -> float:
        """The emulator's current time."""
        return float(self._call("GET", "clock")["now"])

    def reset(self) -> None:
        """Back to the starting apps with empty state."""
        self._post("reset")

    def issue_response_code(self, msgid: str) -> str:
        """A fresh response_code for a sent card, as a click callback would carry."""
        return str(self._post("response_codes", {"msgid": msgid})["response_code"])

    def register_aibot_response_code(
        self,
        response_code: str | None = None,
        *,
        chattype: str = "single",
        msgid: str | None = None,
        userid: str | None = None,
        chatid: str | None = None,
    ) -> dict[str, Any]:
        """Issue an AI bot's response_code (fresh if None) for a callback into chattype."""
        payload = {"response_code": response_code, "chattype": chattype, "msgid": msgid}
        payload |= {"userid": userid, "chatid": chatid}
        entry: dict[str, Any] = self._post("aibot/response_codes", payload)
        return entry

    def aibot_response_codes(self) -> list[dict[str, Any]]:
        """The AI-bot response codes issued (JSON form of AibotResponseCode)."""
        codes: list[dict[str, Any]] = self._call("GET", "aibot/response_codes")
        return codes

    def aibot_responses(
        self, *, response_code: str | None = None, shown: bool | None = None
    ) -> list[dict[str, Any]]:
        """POSTs to response_urls (JSON form of AibotResponseRecord), optionally filtered."""
        params: dict[str, str] = {}
        if response_code is not None:
            params["response_code"] = response_code
        if shown is not None:
            params["shown"] = "true" if shown else "false"
        records: list[dict[str, Any]] = self._call("GET", "aibot/responses", params=params)
        return records

    def webhooks(self) -> list[dict[str, Any]]:
        """The registered group robots (key, name)."""
        robots: list[dict[str, Any]] = self._call("GET", "webhooks")
        return robots

    def add_webhook(self, key: str, name: str = "") -> dict[str, Any]:
        """Register a group robot by its key."""
        robot: dict[str, Any] = self._post("webhooks", {"key": key, "name": name})
        return robot

    def webhook_messages(
        self, *, key: str | None = None, shown: bool | None = None
    ) -> list[dict[str, Any]]:
        """webhook/send calls (JSON form of WebhookRecord), optionally to key, or shown or not."""
        params: dict[str, str] = {}
        if key is not None:
            params["key"] = key
        if shown is not None:
            params["shown"] = "true" if shown else "false"
        records: list[dict[str, Any]] = self._call("GET", "webhooks/messages", params=params)
        return records

    def set_webhook_policy(
        self, *, per_minute: int | None = None, rate_errcode: int | None = None
    ) -> None:
        """Messages a robot takes per 60 s and the errcode of the one over."""
        self._post("webhooks/policy", {"per_minute": per_minute, "rate_errcode": rate_errcode})

    def set_aibot_response_policy(
        self, *, second_call: SecondCall | None = None, accept_stream: bool | None = None
    ) -> None:
        """Second calls: "silent" or an errcode; accept_stream: take a finished stream body."""
        self._post(
            "aibot/response_policy", {"second_call": second_call, "accept_stream": accept_stream}
        )
