"""`wecom doctor`: checks a deployment, one line each, with the fix for every failure."""

from __future__ import annotations

import argparse
import email.utils
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import requests

from callback.app import load_settings
from callback.cli.args import positive_float
from callback.config import AppSettings, Settings, shown_url
from callback.devtools.simulator import Simulator
from callback.errcodes import hint
from callback.errors import WecomError
from callback.store import open_store

Check = tuple[bool, str]  # (passed, the line to print)


def _token(app: AppSettings, timeout: float) -> tuple[Check, float | None]:
    """Fetch a token directly (not from the cache); also read WeCom's clock from the answer."""
    url = f"{app.api_base_url}/cgi-bin/gettoken"
    params = {"corpid": app.corp_id, "corpsecret": app.secret}
    try:
        response = requests.get(url, params=params, timeout=timeout)
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        # the exception's text holds the request URL, secret included: name only its type
        return (False, f"token {app.name}: {app.api_base_url} unreachable "
                       f"({type(exc).__name__}); check the "
                       "network, proxy and apps.NAME.api_base_url"), None  # fmt: skip
    skew = _skew(response.headers.get("Date"))
    code = int(data.get("errcode", 0)) if isinstance(data, dict) else -1
    if code == 0:
        return (True, f"token {app.name}: fetched (expires in {data.get('expires_in')} s)"), skew
    return (False, f"token {app.name}: errcode {code}: {hint(code)}"), skew


def _skew(date_header: str | None) -> float | None:
    if not date_header:
        return None
    try:
        return time.time() - email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None


def _callback(app: AppSettings, url: str, timeout: float) -> Check:
    sim = Simulator.create(app.token, app.encoding_aes_key, app.corp_id, agent_id=app.agent_id)
    query, echo = sim.verification()
    try:
        response = requests.get(url, params=query, timeout=timeout)
    except requests.RequestException as exc:
        why = type(exc).__name__
        return False, f"callback {app.name}: {url} unreachable ({why}); is the server running?"
    if response.status_code == 200 and response.text == echo:
        return True, f"callback {app.name}: {url} answers WeCom's URL verification"
    if response.status_code == 403:
        fix = "the server has another token or EncodingAESKey for this app than this config"
    elif response.status_code == 404:
        fix = "no such app or path there: check server.callback_prefix and the app name"
    elif response.status_code == 400:
        fix = f"it said: {response.text.strip()[:120]!r} (a wrong EncodingAESKey, usually)"
    else:
        fix = "the answer must be the bare decrypted echostr (no quotes, newline or JSON)"
    return False, f"callback {app.name}: {url} answered {response.status_code}; {fix}"


def _store(settings: Settings) -> Check:
    where = shown_url(settings.server.state)  # a Redis password is never printed
    try:
        store = open_store(settings.server.state)
        key = f"doctor:{uuid.uuid4().hex}"
        store.put(key, "ok", 10)
        readable = store.get(key) == "ok"
        store.delete_if(key, "ok")
    except WecomError as exc:
        return False, f"state store {where}: {exc}; check the path and permissions"
    if not readable:
        return False, f"state store {where}: a written value did not read back"
    return True, f"state store {where}: writable"


#: The values config.example.toml ships with (what `wecom init` writes): not filled in yet.
EXAMPLE_VALUES = (
    "ww0123456789abcdef", "ReplaceWithToken", "ReplaceWithBotToken",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
)  # fmt: skip


def placeholders(settings: Settings) -> list[str]:
    """The keys that still hold config.example.toml's example values."""
    tables: list[tuple[str, Any]] = [
        *((f"apps.{n}", a) for n, a in settings.apps.items()),
        *((f"bots.{n}", b) for n, b in settings.bots.items()),
        *((f"webhooks.{n}", w) for n, w in settings.webhooks.items()),
    ]
    found = []
    for where, table in tables:
        for key in ("corp_id", "secret", "token", "encoding_aes_key", "key"):
            value = getattr(table, key, "")
            if isinstance(value, str) and (value in EXAMPLE_VALUES or value.startswith("replace-")):
                found.append(f"{where}.{key}")
    return found


def checks(settings: Settings, url: str | None, timeout: float) -> Iterator[Check]:
    """Every check, in order: config, tokens (and clock), callback URLs, state store."""
    where = "sandbox (no config file)" if settings.sandbox else settings.source
    unfilled = [] if settings.sandbox else placeholders(settings)
    if unfilled:
        yield False, (f"config: {where} still has the example's values in {', '.join(unfilled)}; "
                      "fill them in from the WeCom admin console")  # fmt: skip
    else:
        yield True, f"config: {where} is valid ({len(settings.apps)} app(s))"
    skews: list[float] = []
    for app in settings.apps.values():
        if not app.secret:  # said, so a missing WECOM_APPS__NAME__SECRET does not pass unseen
            yield True, f"token {app.name}: skipped, no secret configured (this app cannot send)"
            continue
        check, skew = _token(app, timeout)
        yield check
        if skew is not None:
            skews.append(skew)
    limit = settings.server.max_clock_skew_s
    if skews:
        worst = max(skews, key=abs)
        ok = abs(worst) < max(limit / 2, 5) if limit else True
        fix = (
            "" if ok else "; run NTP (chrony/systemd-timesyncd): callbacks get 403 beyond the skew"
        )
        yield ok, f"clock: {worst:+.1f} s from WeCom's (limit {limit} s){fix}"
    for app in settings.apps.values():
        if app.receives and url:
            yield _callback(
                app, f"{url.rstrip('/')}{settings.server.callback_prefix}/{app.name}", timeout
            )
    yield _store(settings)


def cmd_doctor(args: argparse.Namespace, out: Callable[[str], Any] = print) -> int:
    try:
        settings = load_settings(args.config)
    except WecomError as exc:
        out(f"FAIL config: {exc}")
        return 1
    failed = 0
    for ok, line in checks(settings, args.url, args.timeout):
        out(f"{'ok  ' if ok else 'FAIL'} {line}")
        failed += not ok
    return 1 if failed else 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    doctor = sub.add_parser(
        "doctor", parents=[common], help="check config, WeCom access, callback URL"
    )
    doctor.add_argument(
        "--url", help="the server's public base URL, e.g. https://wecom.example.com"
    )
    doctor.add_argument("--timeout", type=positive_float, default=5.0)
    doctor.set_defaults(func=cmd_doctor)
