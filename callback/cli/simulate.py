"""`wecom simulate`: a callback encrypted and signed exactly as WeCom sends it, to any server.

It prints the HTTP status, the latency and the decrypted passive reply; against the sandbox it
also prints what the emulator received through the send API for it, waiting until the server is
done with the callback (its handler returned, its messages delivered).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from callback.app import load_settings
from callback.cli.args import positive_float
from callback.config import Settings
from callback.devtools import sandbox
from callback.devtools.aibot import AibotSide
from callback.devtools.simulator import Simulator, plaintext
from callback.errors import WecomError
from callback.inbound.messages import parse
from callback.store import open_store
from callback.store.records import DONE, PENDING

DEFAULT_BASE = "http://127.0.0.1:8080"


def pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """KEY=VALUE arguments as a dict; a malformed one is an error naming the option."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise WecomError(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _fields(sim: Simulator, args: argparse.Namespace) -> dict[str, Any] | bytes:
    if args.kind == "text":
        return sim.text(args.value)
    if args.kind == "click":
        return sim.click(args.value)
    if args.kind == "card-action":
        selected = {q: o.split(",") for q, o in pairs(args.select, "--select").items()}
        return sim.card_action(args.value, task_id=args.task_id, selected=selected)
    if args.kind == "event":
        return sim.event(args.value, **pairs(args.field, "--field"))
    return Path(args.value).read_bytes()  # file: a plaintext XML or JSON callback


def target(given: str | None, settings: Settings, path: str) -> str:
    """The URL to post to: `--url` as given when it has a path (a whole callback URL), else that
    base URL with `path` (as `wecom doctor --url` takes it); without --url, the sandbox server
    started from this directory, else http://127.0.0.1:8080."""
    if given:
        if urlsplit(given).path not in ("", "/"):
            return given
        return given.rstrip("/") + path
    found = sandbox.running(os.environ) if settings.sandbox else None
    return (found.server if found and found.server else DEFAULT_BASE) + path


def unreachable(url: str) -> WecomError:
    """No server listens at `url`: say so, and what to do."""
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    return WecomError(
        f"no server at {base}: is `wecom serve` running? Start it, or give its address with "
        f"--url (a base URL like {DEFAULT_BASE}, or the whole callback URL)"
    )


def _emulator_messages(url: str | None) -> list[dict[str, Any]] | None:
    if not url:
        return None
    try:
        found = requests.get(f"{url}/_emulator/messages", timeout=2).json()
    except (requests.RequestException, ValueError):
        return None
    return found if isinstance(found, list) else None


def cmd_simulate_bot(args: argparse.Namespace, settings: Settings) -> int:
    """A member's message to an AI bot as WeCom sends it, then refresh callbacks about once a
    second, printing the stream as it grows, until it finishes (or 6 minutes pass)."""
    name = args.bot or next(iter(settings.bots), "")
    bot = settings.bots.get(name)
    if bot is None or bot.mode != "callback":
        known = ", ".join(n for n, b in settings.bots.items() if b.mode == "callback") or "none"
        raise WecomError(f"--bot {name!r}: no AI bot in callback mode in the config ({known})")
    url = target(args.url, settings, f"{settings.server.bot_prefix}/{name}")
    side = AibotSide(url, bot.token, bot.encoding_aes_key, bot.bot_id, user=args.user,
                     strict=False, timeout_s=args.timeout)  # fmt: skip
    message = side.group_text(args.value) if args.group else side.text(args.value)
    started = time.perf_counter()
    first = side.post(message)
    if first.status is None and any(v.rule == "http.connect" for v in first.violations):
        raise unreachable(url)
    print(f"HTTP {first.status} in {_ms(started)} ms")
    reply = first.reply if isinstance(first.reply, dict) else None
    stream = reply.get("stream") if reply else None
    if not isinstance(stream, dict):
        print(json.dumps(reply, ensure_ascii=False) if reply else "(no reply)")
        return 0 if first.status == 200 else 1
    shown = ""
    while True:
        content = str(stream.get("content", ""))
        if content != shown:
            print(content[len(shown) :] if content.startswith(shown) else f"\n{content}",
                  end="", flush=True)  # fmt: skip
            shown = content
        if stream.get("finish") or time.perf_counter() - started > 360:
            break
        time.sleep(1.0)  # WeCom asks about once a second
        refresh = side.post(side.refresh(message, str(stream.get("id", ""))), kind="refresh")
        stream = (refresh.reply or {}).get("stream") or stream
    print(f"\n(finished in {time.perf_counter() - started:.1f} s)"
          if stream.get("finish") else "\n(6 minutes passed without a finish)")  # fmt: skip
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.kind == "bot":
        return cmd_simulate_bot(args, settings)
    name = args.app or next((n for n, a in settings.apps.items() if a.receives), "")
    app = settings.apps.get(name)
    if app is None or not app.receives:
        where = "the sandbox" if settings.sandbox else settings.source
        receiving = ", ".join(n for n, a in settings.apps.items() if a.receives) or "none"
        raise WecomError(
            f"--app {name!r}: no application with a token and encoding_aes_key in {where}; "
            f"the ones that receive callbacks are {receiving}"
        )
    sim = Simulator.create(app.token, app.encoding_aes_key, app.corp_id, agent_id=app.agent_id)
    sim.user = args.user
    url = target(args.url, settings, f"{settings.server.callback_prefix}/{name}")
    started = time.perf_counter()
    if args.kind == "verify":
        query, echo = sim.verification()
        response = _request("GET", url, query, None, args.timeout)
        ok = response.status_code == 200 and response.text == echo
        print(f"HTTP {response.status_code} in {_ms(started)} ms; echo {'OK' if ok else 'WRONG'}")
        return 0 if ok else 1
    emulator_url = sandbox.running_emulator(os.environ) if settings.sandbox else None
    before = _emulator_messages(emulator_url)
    fields = _fields(sim, args)
    data = fields if isinstance(fields, bytes) else plaintext(fields, as_json=args.json)
    query, body = sim.post(data, as_json=args.json)
    response = _request("POST", url, query, body, args.timeout)
    print(f"HTTP {response.status_code} in {_ms(started)} ms")
    if response.status_code != 200:
        print(response.text.strip())
        if response.status_code == 403 and settings.sandbox:
            print(f"(this directory's sandbox keys, {os.path.abspath(sandbox.FILE_NAME)}, are not "
                  "that server's: run this command in the directory where its `wecom serve` "
                  "runs)")  # fmt: skip
        return 1
    plain = sim.open_reply(response.content)
    if plain:
        reply = parse(plain)
        print(f"passive reply ({reply.msg_type}):")
        print(reply.raw.get("Content", "") if reply.msg_type == "text" else plain.decode())
    else:
        print("(empty 200: no passive reply)")
    if before is not None and args.wait > 0:
        key = f"{name}:{parse(data).dedup_key}"
        _watch(emulator_url, len(before), args.wait, _settled(settings, key))
    return 0


def _settled(settings: Settings, key: str) -> Callable[[], bool]:
    """Whether the sandbox server finished the callback `key` (its inbox record): its handler
    returned and everything it sends was delivered (no item of it pending in the outbox)."""
    store = open_store(settings.server.state)

    def done() -> bool:
        record = store.inbox_get(key)
        if record is not None and record.state != DONE:
            return False
        pending = store.outbox_list([PENDING], 1000)
        return not any(item.id.startswith(f"{key}:") for item in pending)

    return done


def _request(
    method: str, url: str, query: dict[str, str], body: bytes | None, timeout: float
) -> requests.Response:
    try:
        return requests.request(method, url, params=query, data=body, timeout=timeout)
    except requests.ConnectionError as exc:
        raise unreachable(url) from exc


def _watch(emulator_url: str | None, seen: int, wait: float, done: Callable[[], bool]) -> None:
    """Print what reaches the emulator's send API until the server is `done` with the callback
    (at once for a plain reply; a background handler's answer when it is sent), at most `wait`
    seconds."""
    print("send API (sandbox emulator):")
    deadline, shown, finished = time.monotonic() + wait, seen, False
    while not finished:
        finished = done()  # before reading: what was sent by then is in this read
        messages = _emulator_messages(emulator_url) or []
        for record in messages[shown:]:
            body = record.get("body", {})
            kind = body.get("msgtype", "?")
            print(f"  -> {body.get('touser', '')} {kind}: "
                  f"{json.dumps(body.get(kind), ensure_ascii=False)}")  # fmt: skip
        shown = max(shown, len(messages))
        if not finished and time.monotonic() >= deadline:
            print(f"  (still running after {wait:g} s; see the server's log, or raise --wait)")
            return
        if not finished:
            time.sleep(0.1)
    if shown == seen:
        print("  (nothing)")


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f}"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    sim = sub.add_parser(
        "simulate", parents=[common], help="send a signed, encrypted callback like WeCom does"
    )
    sim.add_argument(
        "kind", choices=["text", "click", "card-action", "event", "file", "verify", "bot"]
    )
    sim.add_argument("value", nargs="?", default="", help="text, key, event name or file")
    sim.add_argument("--app", help="application name (default: the first that receives)")
    sim.add_argument("--bot", help="bot: the AI bot's name (default: the first)")
    sim.add_argument("--group", action="store_true", help="bot: in a group, @-mentioning it")
    sim.add_argument(
        "--url",
        help="the server's base URL (e.g. http://127.0.0.1:9123), or a whole callback URL "
        "(default: the sandbox server started from this directory, else " + DEFAULT_BASE + ")",
    )
    sim.add_argument("--from", dest="user", default="zhangsan", help="sender UserID")
    sim.add_argument("--task-id", default="task-1", help="card-action: the card's task_id")
    sim.add_argument("--select", action="append", default=[], metavar="Q=O1,O2")
    sim.add_argument("--field", action="append", default=[], metavar="K=V")
    sim.add_argument("--json", action="store_true", help="use the JSON envelope")
    sim.add_argument("--timeout", type=positive_float, default=10.0)
    sim.add_argument(
        "--wait", type=float, default=30.0,
        help="sandbox: show what the callback sends, until its handler is done and its messages "
        "delivered, at most this many seconds (0: do not wait)",
    )  # fmt: skip
    sim.set_defaults(func=cmd_simulate)
