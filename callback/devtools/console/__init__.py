"""The sandbox console (`/_console`): the corp's members and their chats as WeCom shows them,
the app's menu, card buttons and a message box that fire real callbacks, AI-bot chats, and a
timeline of callbacks from the inbox and outbox records.

On in sandbox mode, or with `[server] console = true`; never on by default with a config file.
"""

from __future__ import annotations

from callback.config import Settings

#: The sandbox corp's members (WeCom's emulator takes any userid; these are listed first).
MEMBERS = ("zhangsan", "lisi", "wangwu")


def enabled(settings: Settings) -> bool:
    """Whether create_app() serves the console: `[server] console`, else sandbox mode."""
    console = settings.server.console
    return settings.sandbox if console is None else console
