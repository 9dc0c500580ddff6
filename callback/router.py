"""Router: handlers registered by decorator, matched in order, included routers after own routes.

router = Router()

@router.click("V1001_TODAY")
def today(message, ctx):
    return "Today's menu: noodles"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from callback.inbound.messages import (
    Event,
    Message,
    TaskCardClickEvent,
    TemplateCardMenuEvent,
    TextMessage,
)

if TYPE_CHECKING:
    from callback.context import Context
    from callback.inbound.replies import Reply

Handler = Callable[[Any, "Context"], "str | Reply | Iterator[str] | None"]
H = TypeVar("H", bound=Handler)
Match = re.Match[str] | str | None


@dataclass(frozen=True, slots=True)
class Route:
    """One registration: what it matches, the handler, and its options."""

    kind: str  # click | card_action | text | event | message | default
    pattern: str | re.Pattern[str] | None
    handler: Handler
    app: str | None = None
    background: bool = False

    @property
    def name(self) -> str:
        return f"{self.handler.__module__}.{getattr(self.handler, '__qualname__', self.handler)}"

    def describe(self) -> str:
        """The route as `wecom routes` prints it."""
        pattern = self.pattern.pattern if isinstance(self.pattern, re.Pattern) else self.pattern
        parts = [f"{self.kind}({pattern!r})" if pattern is not None else f"{self.kind}()"]
        parts.append(f"app={self.app}" if self.app else "app=*")
        if self.background:
            parts.append("background")
        return " ".join(parts) + f" -> {self.name}"

    def match(self, message: Message, app: str) -> tuple[bool, Match]:
        """Whether this route takes `message` for `app`, and the match to hand the handler."""
        if self.app is not None and self.app != app:
            return False, None
        kind, pattern = self.kind, self.pattern
        if kind == "default":
            return True, None
        if kind == "text":
            if not isinstance(message, TextMessage):
                return False, None
            if isinstance(pattern, re.Pattern):
                found = pattern.search(message.content)
                return found is not None, found
            return message.content.strip() == pattern, message.content
        if kind == "message":
            return message.msg_type == pattern, None
        if not isinstance(message, Event):
            return False, None
        if kind == "event":
            return message.event.lower() == pattern, None
        if kind == "click":  # CLICK too: some clients' samples capitalise it
            clicked = message.event.lower() == "click" and message.event_key == pattern
            return clicked, message.event_key
        if kind == "card_action":
            if not isinstance(message, TemplateCardMenuEvent | TaskCardClickEvent):
                return False, None
            return pattern is None or message.event_key == pattern, message.event_key
        return False, None


class Router:
    """Handlers by decorator (each with a method twin, `add`), and included routers."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._routes: list[Route] = []
        self._included: list[Router] = []

    def add(
        self,
        kind: str,
        pattern: str | re.Pattern[str] | None,
        handler: Handler,
        *,
        app: str | None = None,
        background: bool = False,
    ) -> Route:
        """Register `handler` directly (what every decorator does)."""
        if kind not in ("click", "card_action", "text", "event", "message", "default"):
            raise ValueError(f"unknown route kind {kind!r}")
        if kind == "event" and isinstance(pattern, str):
            pattern = pattern.lower()  # WeCom sends LOCATION in capitals; match any case
        route = Route(kind, pattern, handler, app, background)
        self._routes.append(route)
        return route

    def _decorator(
        self, kind: str, pattern: str | re.Pattern[str] | None, app: str | None, background: bool
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.add(kind, pattern, handler, app=app, background=background)
            return handler

        return register

    def click(
        self, key: str, *, app: str | None = None, background: bool = False
    ) -> Callable[[H], H]:
        """A menu click (event `click`, in any case) with this EventKey: `@router.click("V1")`."""
        return self._decorator("click", key, app, background)

    def card_action(
        self, key: str | None = None, *, app: str | None = None, background: bool = False
    ) -> Callable[[H], H]:
        """A template-card button or menu key, or a task-card button (taskcard_click), by its
        EventKey (None: any): `@router.card_action("OK")`."""
        return self._decorator("card_action", key, app, background)

    def text(
        self, pattern: str | re.Pattern[str], *, app: str | None = None, background: bool = False
    ) -> Callable[[H], H]:
        """Text equal to `pattern` (trimmed), or a regex searched in it (`ctx.match`)."""
        return self._decorator("text", pattern, app, background)

    def event(
        self, name: str, *, app: str | None = None, background: bool = False
    ) -> Callable[[H], H]:
        """Any event by name, case-insensitively: `@router.event("enter_agent")`."""
        return self._decorator("event", name, app, background)

    def message(
        self, msg_type: str, *, app: str | None = None, background: bool = False
    ) -> Callable[[H], H]:
        """Any message of a MsgType: `@router.message("image")`."""
        return self._decorator("message", msg_type, app, background)

    def default(self, *, app: str | None = None, background: bool = False) -> Callable[[H], H]:
        """What runs when no other route of any router matched."""
        return self._decorator("default", None, app, background)

    def include(self, router: Router) -> Router:
        """Add another router's routes after this one's (in include order)."""
        if router is self:
            raise ValueError("a router cannot include itself")
        self._included.append(router)
        return router

    def routes(self) -> Iterator[Route]:
        """Every route in match order: specific routes depth-first, then every default."""
        flat = list(self._walk())
        yield from (r for r in flat if r.kind != "default")
        yield from (r for r in flat if r.kind == "default")

    def _walk(self) -> Iterator[Route]:
        yield from self._routes
        for child in self._included:
            yield from child._walk()

    def compile(self) -> Callable[[Message, str], tuple[Route, Match] | None]:
        """A resolver over a snapshot of the routes, for the hot path."""
        table = tuple(self.routes())

        def resolve(message: Message, app: str) -> tuple[Route, Match] | None:
            for route in table:
                ok, found = route.match(message, app)
                if ok:
                    return route, found
            return None

        return resolve
