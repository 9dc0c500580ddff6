"""`wecom send webhook --hook NAME ...`: a message posted to a group robot (消息推送).

    wecom send webhook --hook alerts "disk almost full"
    wecom send webhook --hook alerts --markdown - < report.md      # any length: split in parts
    wecom send webhook --hook alerts --image chart.png
    wecom send webhook --hook alerts --news "Title=https://x" --news "Other=https://y"
    wecom send webhook --hook alerts --file build.log
    wecom send webhook --hook alerts --card card.json

Every message is checked against WeCom's limits before anything is sent (exit 2 naming the
field); `--dry-run` prints the JSON and sends nothing. The robot's 20 messages a minute are
waited for, never dropped. The key is never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from callback.app import load_settings
from callback.errors import WecomError
from callback.outbound.webhooks import (
    WebhookClient,
    WebhookFile,
    WebhookImage,
    WebhookMarkdown,
    WebhookMessage,
    WebhookNews,
    WebhookTemplateCard,
    WebhookText,
    article,
)
from callback.store import open_store


def messages(args: argparse.Namespace, client: WebhookClient | None) -> list[WebhookMessage]:
    """The messages the arguments describe, validated (a long markdown gives several)."""
    if args.markdown:
        text = sys.stdin.read() if args.markdown == "-" else args.markdown
        return list(WebhookMarkdown(text).parts())
    if args.image:
        return [WebhookImage(Path(args.image).read_bytes())]
    if args.news:
        pairs = [item.partition("=") for item in args.news]
        if any(not sep for _, sep, _ in pairs):
            raise WecomError("--news: expected TITLE=URL")
        return [WebhookNews(tuple(article(title, url) for title, _, url in pairs))]
    if args.file:
        path = Path(args.file)
        if client is None:
            return [WebhookFile("(uploaded when sent)")]
        return [WebhookFile(client.upload(args.hook, path.name, path.read_bytes()))]
    if args.card:
        return [WebhookTemplateCard(json.loads(Path(args.card).read_text(encoding="utf-8")))]
    if not args.text:
        raise WecomError("give the text, or --markdown, --image, --news, --file or --card")
    text = sys.stdin.read() if args.text == "-" else args.text
    return [WebhookText(text, tuple(args.mention))]


def cmd_webhook(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.hook not in settings.webhooks:
        known = ", ".join(settings.webhooks) or "none configured"
        raise WecomError(f"--hook {args.hook!r}: no such webhook ({known}); add [webhooks.NAME]")
    if args.dry_run:
        for message in messages(args, None):
            print(json.dumps(message.body(), ensure_ascii=False, indent=2))
        return 0
    client = WebhookClient(settings.webhooks, open_store(settings.server.state))
    for message in messages(args, client):
        client.send(args.hook, message)
        print(f"posted {message.body()['msgtype']} to {args.hook}")
    return 0


def add_parser(kinds: Any, common: argparse.ArgumentParser) -> None:
    """`wecom send webhook`, beside the app message types."""
    hook = kinds.add_parser("webhook", parents=[common], help="post to a group robot")
    hook.add_argument("--hook", required=True, help="the [webhooks.NAME] to post to")
    hook.add_argument("text", nargs="?", default="", help="a text (- reads standard input)")
    hook.add_argument("--mention", action="append", default=[], help="a UserID, or @all")
    kind = hook.add_mutually_exclusive_group()
    kind.add_argument("--markdown", metavar="TEXT", help="markdown (- reads standard input)")
    kind.add_argument("--image", metavar="FILE", help="a JPG or PNG of at most 2 MB")
    kind.add_argument("--news", action="append", metavar="TITLE=URL", help="an article (1-8)")
    kind.add_argument("--file", metavar="FILE", help="a file (uploaded, kept 3 days)")
    kind.add_argument("--card", metavar="JSON", help="a text_notice or news_notice card")
    hook.add_argument("--dry-run", action="store_true", help="print the JSON, send nothing")
    hook.set_defaults(func=cmd_webhook)
