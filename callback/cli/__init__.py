"""The `wecom` command: serve, simulate, send, recall, routes, emulator."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from callback import loader
from callback.app import load_settings
from callback.cli import send
from callback.errors import WecomError
from callback.messages import parse
from callback.simulator import Simulator


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise WecomError(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    from callback.serve import serve

    return serve(args.config, args.bind, args.workers, args.emulator_bind)


def cmd_routes(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    for number, route in enumerate(loader.load(settings.server.handlers).routes(), 1):
        print(f"{number:3d}. {route.describe()}")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from callback.emulator import main as emulator_main

    return emulator_main(["--bind", args.bind])


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    name = args.app or next((n for n, a in settings.apps.items() if a.receives), "")
    app = settings.apps.get(name)
    if app is None or not app.receives:
        raise WecomError(f"--app {name!r}: no app with token and encoding_aes_key in the config")
    sim = Simulator.create(app.token, app.encoding_aes_key, app.corp_id, agent_id=app.agent_id)
    sim.user = args.user
    url = args.url or f"http://127.0.0.1:8080{settings.server.callback_prefix}/{name}"
    if args.kind == "verify":
        query, echo = sim.verification()
        started = time.perf_counter()
        response = requests.get(url, params=query, timeout=args.timeout)
        elapsed = (time.perf_counter() - started) * 1000
        ok = response.status_code == 200 and response.text == echo
        print(f"HTTP {response.status_code} in {elapsed:.1f} ms; echo {'OK' if ok else 'WRONG'}")
        return 0 if ok else 1
    if args.kind == "text":
        fields = sim.text(args.value)
    elif args.kind == "click":
        fields = sim.click(args.value)
    elif args.kind == "card-action":
        selected = {q: o.split(",") for q, o in _pairs(args.select, "--select").items()}
        fields = sim.card_action(args.value, task_id=args.task_id, selected=selected)
    elif args.kind == "event":
        fields = sim.event(args.value, **_pairs(args.field, "--field"))
    else:
        payload = Path(args.value).read_bytes()
        query, body = sim.post(payload)
        return _post(sim, url, query, body, args.timeout)
    query, body = sim.post(fields, as_json=args.json)
    return _post(sim, url, query, body, args.timeout)


def _post(sim: Simulator, url: str, query: dict[str, str], body: bytes, timeout: float) -> int:
    started = time.perf_counter()
    response = requests.post(url, params=query, data=body, timeout=timeout)
    elapsed = (time.perf_counter() - started) * 1000
    print(f"HTTP {response.status_code} in {elapsed:.1f} ms")
    if response.status_code != 200:
        print(response.text.strip())
        return 1
    plain = sim.open_reply(response.content)
    if not plain:
        print("(empty 200: no passive reply)")
        return 0
    reply = parse(plain)
    print(f"passive reply ({reply.msg_type}):")
    if reply.msg_type == "text":
        print(reply.raw.get("Content", ""))
    else:
        print(plain.decode())
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default: $WECOM_CONFIG, ./config.toml)")
    top = argparse.ArgumentParser(prog="wecom", description="WeCom callback server and tools")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", parents=[common], help="run the server (sandbox mode without a config)"
    )
    serve.add_argument("--bind", default="127.0.0.1:8080")
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--emulator-bind", help="sandbox: where the WeCom emulator listens")
    serve.set_defaults(func=cmd_serve)

    routes = sub.add_parser(
        "routes", parents=[common], help="the registered handlers, in match order"
    )
    routes.set_defaults(func=cmd_routes)

    emulator = sub.add_parser("emulator", help="run the WeCom API emulator")
    emulator.add_argument("--bind", default="127.0.0.1:8081")
    emulator.set_defaults(func=cmd_emulator)

    sim = sub.add_parser(
        "simulate", parents=[common], help="send a signed, encrypted callback like WeCom does"
    )
    sim.add_argument("kind", choices=["text", "click", "card-action", "event", "file", "verify"])
    sim.add_argument("value", nargs="?", default="", help="text, key, event name or file")
    sim.add_argument("--app", help="application name (default: the first that receives)")
    sim.add_argument("--url", help="callback URL (default: the local server)")
    sim.add_argument("--from", dest="user", default="zhangsan", help="sender UserID")
    sim.add_argument("--task-id", default="task-1")
    sim.add_argument("--select", action="append", default=[], metavar="Q=O1,O2")
    sim.add_argument("--field", action="append", default=[], metavar="K=V")
    sim.add_argument("--json", action="store_true", help="use the JSON envelope")
    sim.add_argument("--timeout", type=float, default=10.0)
    sim.set_defaults(func=cmd_simulate)

    send.add_parsers(sub, common)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except WecomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except requests.RequestException as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code
