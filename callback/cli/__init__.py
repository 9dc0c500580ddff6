"""The `wecom` command: init, serve, simulate, send, recall, routes, doctor, outbox, emulator."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import requests

from callback import loader
from callback.app import load_settings
from callback.cli import connect, doctor, init, outbox, send, simulate
from callback.cli.args import bind_address, positive_int
from callback.errors import WecomError


def cmd_serve(args: argparse.Namespace) -> int:
    from callback.serve import serve

    return serve(args.config, args.bind, args.workers, args.emulator_bind, args.threads)


def cmd_routes(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    loaded = loader.load_for(settings.server.handlers, sandbox=settings.sandbox)
    print("\n".join(loaded.describe()))
    print("routes, in match order:")
    for number, route in enumerate(loaded.router.routes(), 1):
        print(f"{number:3d}. {route.describe()}")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from callback.devtools.emulator import main as emulator_main

    return emulator_main(["--bind", args.bind])


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default: $WECOM_CONFIG, ./config.toml)")
    top = argparse.ArgumentParser(prog="wecom", description="WeCom callback server and tools")
    sub = top.add_subparsers(dest="command", required=True)
    init.add_parser(sub)

    serve = sub.add_parser(
        "serve", parents=[common], help="run the server (sandbox mode without a config)"
    )
    serve.add_argument("--bind", type=bind_address, default="127.0.0.1:8080")
    serve.add_argument("--workers", type=positive_int, default=2)
    serve.add_argument(
        "--threads", type=positive_int,
        help="request threads per worker (default: server.threads, 32)",
    )  # fmt: skip
    serve.add_argument(
        "--emulator-bind", type=bind_address, help="sandbox: where the WeCom emulator listens"
    )
    serve.set_defaults(func=cmd_serve)

    routes = sub.add_parser(
        "routes", parents=[common], help="the registered handlers, in match order"
    )
    routes.set_defaults(func=cmd_routes)

    emulator = sub.add_parser("emulator", help="run the WeCom API emulator")
    emulator.add_argument("--bind", type=bind_address, default="127.0.0.1:8081")
    emulator.set_defaults(func=cmd_emulator)

    simulate.add_parser(sub, common)
    send.add_parsers(sub, common)
    doctor.add_parser(sub, common)
    outbox.add_parser(sub, common)
    connect.add_parser(sub, common)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    if os.getcwd() not in sys.path:  # the project's modules before installed ones
        sys.path.insert(0, os.getcwd())
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except WecomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except requests.RequestException as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file named on the command line
        print(f"error: {error.filename or 'input'}: {error.strerror or error}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as error:
        print(f"error: not JSON ({error})", file=sys.stderr)
        return 2
    except UnicodeError:
        print("error: the input is not UTF-8 text", file=sys.stderr)
        return 2
    return code
