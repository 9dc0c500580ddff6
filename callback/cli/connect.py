"""`wecom connect [--bot NAME]`: hold the long connection of AI bots in connection mode.

`wecom serve` does this too, beside the HTTP server, when a bot has `mode = "connection"`; this
command is for a host that serves no HTTP (behind a firewall, say): it runs the same handlers,
inbox and outbox, and several of them (or several servers) elect one holder per bot through
the state store. It runs until interrupted, and stops by itself when WeCom refuses the secret
or another connection evicts this one.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from typing import Any

from callback.app import create_app, load_settings
from callback.errors import WecomError


def cmd_connect(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings(args.config)
    chosen = {
        name: bot
        for name, bot in settings.bots.items()
        if bot.mode == "connection" and args.bot in (None, name)
    }
    if not chosen:
        known = ", ".join(n for n, b in settings.bots.items() if b.mode == "connection") or "none"
        raise WecomError(
            f"--bot {args.bot!r}: no AI bot in connection mode (in connection mode: {known}); "
            "set mode = 'connection', bot_id and secret in [bots.NAME]"
        )
    others = {n: b for n, b in settings.bots.items() if n not in chosen and b.mode != "connection"}
    app = create_app(dataclasses.replace(settings, bots={**others, **chosen}))
    connections = app.extensions["wecom.connections"]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"holding the long connection of {', '.join(chosen)} (Ctrl-C to stop)", flush=True)
    try:
        while not done.wait(1.0):
            holders = list(connections.holders.values())
            if all(h.stopped.is_set() for h in holders):
                return 1  # refused or evicted: said so loudly in the log
    except KeyboardInterrupt:
        pass
    finally:
        connections.stop()
        app.extensions["wecom.delivery"].stop()
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    connect = sub.add_parser(
        "connect", parents=[common], help="hold AI bots' long connections (mode = connection)"
    )
    connect.add_argument("--bot", help="only this bot (default: every bot in connection mode)")
    connect.set_defaults(func=cmd_connect)
