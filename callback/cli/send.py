"""`wecom send ...` and `wecom recall`: validated messages from the command line, or --dry-run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from callback.app import load_settings
from callback.cli import webhook
from callback.config import Settings
from callback.errors import Unreachable, WecomError
from callback.outbound import (
    Markdown,
    Message,
    MiniProgramNotice,
    Recipients,
    TemplateCard,
    Text,
    TextCard,
    build_send_bodies,
)
from callback.outbound.client import SendResult, WecomClient
from callback.store import open_store


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise WecomError(f"{option} {item!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _content(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def build(args: argparse.Namespace) -> Message:
    """The message the arguments describe (validated on construction)."""
    kind = args.kind
    if kind == "text":
        return Text(_content(args.content))
    if kind == "markdown":
        return Markdown(_content(args.content))
    if kind == "textcard":
        return TextCard(args.title, args.description, args.url, args.btntxt)
    if kind == "miniprogram-notice":
        return MiniProgramNotice(
            appid=args.appid,
            title=args.title,
            page=args.page,
            description=args.description,
            items=_pairs(args.item, "--item"),
            emphasis_first_item=args.emphasis_first_item,
        )
    if args.card:
        return TemplateCard(json.loads(Path(args.card).read_text(encoding="utf-8")))
    buttons = _pairs(args.button, "--button")
    if buttons:
        return TemplateCard.button_interaction(args.task_id, args.title, buttons, desc=args.desc)
    return TemplateCard.text_notice(args.title, args.url, desc=args.desc, task_id=args.task_id)


def recipients(args: argparse.Namespace) -> Recipients:
    if args.all:
        return Recipients.all()
    return Recipients.parse(args.to or "", args.party or "", args.tag or "")


def _print_result(result: SendResult) -> None:
    print(f"msgid: {', '.join(result.msgids)}")
    if result.response_code:
        print(f"response_code: {result.response_code}")
    for label, ids in (
        ("invalid users", result.invalid_users),
        ("invalid parties", result.invalid_parties),
        ("invalid tags", result.invalid_tags),
        ("unlicensed users", result.unlicensed_users),
    ):
        if ids:
            print(f"{label}: {', '.join(ids)}")


def _client(args: argparse.Namespace) -> tuple[WecomClient, Settings]:
    settings = load_settings(args.config)
    return WecomClient(settings.apps, open_store(settings.server.state)), settings


@contextmanager
def _sandbox_hint(settings: Settings, app: str) -> Iterator[None]:
    """In sandbox mode, no connection means no emulator: say so, and what starts one."""
    try:
        yield
    except Unreachable as exc:
        if not settings.sandbox:
            raise
        url = settings.apps[app].api_base_url
        raise WecomError(
            f"no emulator at {url}: is `wecom serve` running? In sandbox mode (no config "
            "file) messages go to the WeCom emulator it starts; start it in this directory"
        ) from exc


def _app(args: argparse.Namespace, settings: Settings) -> str:
    """--app, else the first configured; an unknown name lists the applications there are."""
    if not settings.apps:
        raise WecomError(f"no applications are configured in {settings.source}; add an [apps.NAME]")
    app: str = args.app or next(iter(settings.apps))
    if app not in settings.apps:
        where = "the sandbox" if settings.sandbox else settings.source
        raise WecomError(
            f"--app {app!r}: no such application in {where}; the applications are "
            f"{', '.join(settings.apps)}"
        )
    return app


def cmd_send(args: argparse.Namespace) -> int:
    message = build(args)
    to = recipients(args)
    client, settings = _client(args)
    app = _app(args, settings)
    if args.dry_run:
        agent_id = settings.apps[app].agent_id  # no secret needed to print the body
        for body in build_send_bodies(message, to, agent_id, enable_duplicate_check=True):
            print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    with _sandbox_hint(settings, app):
        _print_result(client.send(app, message, to))
    return 0


def cmd_recall(args: argparse.Namespace) -> int:
    client, settings = _client(args)
    app = _app(args, settings)
    with _sandbox_hint(settings, app):
        client.recall(app, args.msgid)
    print(f"recalled {args.msgid}")
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `send` (with one subcommand per message type) and `recall`."""
    send = sub.add_parser("send", help="send an app message")
    kinds = send.add_subparsers(dest="kind", required=True)
    target = argparse.ArgumentParser(add_help=False, parents=[common])
    target.add_argument("--app", help="application name (default: the first configured)")
    target.add_argument("--to", help="UserIDs, comma- or |-separated")
    target.add_argument("--party", help="department ids")
    target.add_argument("--tag", help="tag ids")
    target.add_argument("--all", action="store_true", help="everyone in the app's range (@all)")
    target.add_argument("--dry-run", action="store_true", help="print the JSON body, send nothing")
    target.set_defaults(func=cmd_send)

    for kind in ("text", "markdown"):
        p = kinds.add_parser(kind, parents=[target], help=f"a {kind} message")
        p.add_argument("content", help="the content, or - to read standard input")
    card = kinds.add_parser("textcard", parents=[target], help="a text card")
    card.add_argument("--title", required=True)
    card.add_argument("--description", required=True)
    card.add_argument("--url", required=True)
    card.add_argument("--btntxt", default="")
    notice = kinds.add_parser(
        "miniprogram-notice", parents=[target], help="a mini-program notification"
    )
    notice.add_argument("--appid", required=True, help="the linked mini program's appid")
    notice.add_argument("--title", required=True, help="4 to 12 characters")
    notice.add_argument("--page", default="", help="page path inside the mini program")
    notice.add_argument("--description", default="", help="4 to 12 characters")
    notice.add_argument("--item", action="append", default=[], metavar="KEY=VALUE")
    notice.add_argument("--emphasis-first-item", action="store_true")
    tc = kinds.add_parser("template-card", parents=[target], help="a template card")
    tc.add_argument("--card", help="a JSON file with the whole template_card object")
    tc.add_argument("--title", default="")
    tc.add_argument("--desc", default="")
    tc.add_argument("--url", default="", help="text_notice: where the card leads")
    tc.add_argument("--task-id", default="")
    tc.add_argument("--button", action="append", default=[], metavar="TEXT=KEY")

    webhook.add_parser(kinds, common)

    recall = sub.add_parser("recall", parents=[common], help="recall a message (within 24 h)")
    recall.add_argument("msgid")
    recall.add_argument("--app")
    recall.set_defaults(func=cmd_recall)
