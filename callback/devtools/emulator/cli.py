"""`python -m callback.devtools.emulator`: run the WeCom API emulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .aibot_ws import DEFAULT_BOT_ID, DEFAULT_BOT_SECRET, AibotConnectionServer, WsKnobs
from .apps import DEFAULT_APPS, EmulatorApp
from .server import EmulatorServer
from .state import Emulator

DEFAULT_BIND = "127.0.0.1:8090"


def parse_bind(value: str) -> tuple[str, int]:
    """HOST:PORT -> (host, port)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def parse_app(value: str) -> EmulatorApp:
    """NAME:CORPID:AGENTID:SECRET[:mini=APPID,...] -> EmulatorApp."""
    parts = value.split(":")
    if len(parts) not in (4, 5) or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(
            f"expected NAME:CORPID:AGENTID:SECRET[:mini=APPID,...], got {value!r}"
        )
    name, corp_id, agent_id, secret = parts[:4]
    appids: tuple[str, ...] = ()
    if len(parts) == 5:
        if not parts[4].startswith("mini="):
            raise argparse.ArgumentTypeError(
                f"the fifth field must be mini=APPID,..., in {value!r}"
            )
        appids = tuple(appid for appid in parts[4].removeprefix("mini=").split(",") if appid)
        if not appids:
            raise argparse.ArgumentTypeError(f"mini= needs at least one appid, in {value!r}")
    try:
        return EmulatorApp(corp_id, int(agent_id), secret, bool(appids), appids, name=name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None


def describe(app: EmulatorApp) -> str:
    """One line per app for the startup banner."""
    line = f"  {app.name or '-':<12} corp={app.corp_id} agentid={app.agent_id} secret={app.secret}"
    if app.is_miniprogram:
        line += f" miniprogram={','.join(app.linked_appids)}"
    return line


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM; 1 if the address can't be bound."""
    parser = argparse.ArgumentParser(
        prog="python -m callback.devtools.emulator",
        description="Emulate qyapi.weixin.qq.com locally.",
    )
    parser.add_argument("--bind", type=parse_bind, default=DEFAULT_BIND, help="HOST:PORT")
    parser.add_argument(
        "--app", type=parse_app, action="append", help="NAME:CORPID:AGENTID:SECRET[:mini=APPID,...]"
    )
    parser.add_argument(
        "--aibot-ws",
        type=parse_bind,
        metavar="HOST:PORT",
        help="also serve the AI bot's WebSocket long connection here",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    host, port = args.bind
    try:
        emulator = Emulator(args.app or DEFAULT_APPS)
    except ValueError as error:
        parser.error(str(error))
    try:
        server = EmulatorServer(emulator, host, port, quiet=args.quiet)
    except OSError as error:
        print(f"cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    print(f"WeCom API emulator listening on {server.url}")
    for app in emulator.apps():
        print(describe(app))
    ws_server = None
    if args.aibot_ws is not None:
        try:
            ws_server = AibotConnectionServer(
                emulator, *args.aibot_ws, knobs=WsKnobs(response_url_base=server.url)
            ).start()
        except OSError as error:
            print(
                f"cannot listen on {args.aibot_ws[0]}:{args.aibot_ws[1]}: {error}", file=sys.stderr
            )
            server.stop()
            return 1
        print(f"AI bot long connection on {ws_server.url}")
        print(f"  bot_id={DEFAULT_BOT_ID} secret={DEFAULT_BOT_SECRET}")
    print(f"control API: {server.url}/_emulator/", flush=True)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if in_main else None
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if ws_server is not None:
            ws_server.stop()
        server.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0
