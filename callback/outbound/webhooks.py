"""Group robots (消息推送): messages posted to a group chat through `webhook/send?key=...`.

Every message is checked against WeCom's limits when built (text 2048 bytes, markdown 4096,
an image JPG/PNG of at most 2 MB sent as base64 with its md5, news 1 to 8 articles), and a long
markdown is split on block boundaries (`split_markdown`): never inside a fenced code block's
line or a table's row; a fence cut between parts is closed and reopened, a table cut between
rows repeats its header. A robot takes 20 messages a minute: `WebhookClient` keeps that window
in the state store, shared by every process, and waits for it rather than lose a message. The
key is the robot's whole credential: it never appears in a log line or an error.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from callback.config import WebhookSettings
from callback.errors import (
    ApiError,
    ConfigError,
    NoAnswer,
    RateLimited,
    ValidationError,
)
from callback.outbound.card_rules import check_card
from callback.outbound.client import failed_exchange
from callback.store import Store

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
IMAGE_LIMIT = 2 * 1024 * 1024
#: WeCom takes 20 messages a minute from one robot.
ROBOT_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 20),)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def _too_long(field_name: str, value: str, limit: int) -> ValidationError:
    size = len(value.encode())
    return ValidationError(
        f"{field_name}: {size} bytes, at most {limit}",
        field=field_name, value=value[:40], limit=f"at most {limit} bytes",
    )  # fmt: skip


class WebhookMessage:
    """A message a group robot can post; `body()` is the JSON WeCom takes."""

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class WebhookText(WebhookMessage):
    """Text of at most 2048 bytes; `mentioned` UserIDs (or "@all") and mobile numbers."""

    content: str
    mentioned: tuple[str, ...] = ()
    mentioned_mobiles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.content:
            raise ValidationError("text.content: empty", field="text.content", limit="not empty")
        if len(self.content.encode()) > TEXT_LIMIT:
            raise _too_long("text.content", self.content, TEXT_LIMIT)

    def body(self) -> dict[str, Any]:
        text: dict[str, Any] = {"content": self.content}
        if self.mentioned:
            text["mentioned_list"] = list(self.mentioned)
        if self.mentioned_mobiles:
            text["mentioned_mobile_list"] = list(self.mentioned_mobiles)
        return {"msgtype": "text", "text": text}


@dataclass(frozen=True)
class WebhookMarkdown(WebhookMessage):
    """Markdown of any length: `ctx.send(..., webhook=)` and `WebhookClient.send_markdown`
    post a text over WeCom's 4096 bytes in parts (`split_markdown`); one body (`body()`, or
    `WebhookClient.send`) must fit."""

    content: str

    def __post_init__(self) -> None:
        if not self.content:
            raise ValidationError(
                "markdown.content: empty", field="markdown.content", limit="not empty"
            )

    def parts(self) -> list[WebhookMarkdown]:
        """The content in parts that each fit one post, in order."""
        return [WebhookMarkdown(part) for part in split_markdown(self.content)]

    def body(self) -> dict[str, Any]:
        if len(self.content.encode()) > MARKDOWN_LIMIT:
            error = _too_long("markdown.content", self.content, MARKDOWN_LIMIT)
            raise ValidationError(
                f"{error}: post it in parts with ctx.send(..., webhook=...) or "
                "WebhookClient.send_markdown", field=error.field, value=error.value,
                limit=error.limit,
            )  # fmt: skip
        return {"msgtype": "markdown", "markdown": {"content": self.content}}


@dataclass(frozen=True)
class WebhookImage(WebhookMessage):
    """A JPG or PNG picture of at most 2 MB (before base64)."""

    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.data) > IMAGE_LIMIT:
            raise ValidationError(
                f"image: {len(self.data)} bytes, at most 2 MB",
                field="image.base64", value=len(self.data), limit="at most 2 MB before base64",
            )  # fmt: skip
        if not self.data.startswith(_IMAGE_MAGIC):
            raise ValidationError(
                "image: not a JPG or PNG", field="image.base64", value=self.data[:8],
                limit="JPG or PNG",
            )  # fmt: skip

    def body(self) -> dict[str, Any]:
        return {
            "msgtype": "image",
            "image": {
                "base64": base64.b64encode(self.data).decode(),
                "md5": hashlib.md5(self.data).hexdigest(),  # noqa: S324 - WeCom's checksum
            },
        }


@dataclass(frozen=True)
class WebhookArticle:
    """One news article: a title (at most 128 bytes), a link, a description, a picture URL."""

    title: str
    url: str
    description: str = ""
    picurl: str = ""


@dataclass(frozen=True)
class WebhookNews(WebhookMessage):
    """News: 1 to 8 articles."""

    articles: tuple[WebhookArticle, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.articles) <= 8:
            raise ValidationError(
                f"news.articles: {len(self.articles)} articles, 1 to 8",
                field="news.articles", value=len(self.articles), limit="1 to 8 articles",
            )  # fmt: skip
        for n, article in enumerate(self.articles):
            if not article.title or len(article.title.encode()) > 128:
                raise _too_long(f"news.articles[{n}].title", article.title, 128)
            if not article.url:
                raise ValidationError(
                    f"news.articles[{n}].url: empty",
                    field=f"news.articles[{n}].url", limit="a link",
                )  # fmt: skip

    def body(self) -> dict[str, Any]:
        articles = [
            {"title": a.title, "url": a.url, "description": a.description, "picurl": a.picurl}
            for a in self.articles
        ]
        return {"msgtype": "news", "news": {"articles": articles}}


@dataclass(frozen=True)
class WebhookFile(WebhookMessage):
    """A file uploaded with `WebhookClient.upload` (its media_id lives 3 days)."""

    media_id: str

    def body(self) -> dict[str, Any]:
        return {"msgtype": "file", "file": {"media_id": self.media_id}}


@dataclass(frozen=True)
class WebhookTemplateCard(WebhookMessage):
    """A template card: text_notice or news_notice (a robot has no interactive cards)."""

    card: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.card.get("card_type") not in ("text_notice", "news_notice"):
            raise ValidationError(
                f"template_card.card_type: {self.card.get('card_type')!r}; a group robot "
                "sends text_notice or news_notice",
                field="template_card.card_type", value=self.card.get("card_type"),
                limit="text_notice or news_notice",
            )  # fmt: skip
        check_card(self.card)

    def body(self) -> dict[str, Any]:
        return {"msgtype": "template_card", "template_card": dict(self.card)}


# -- long markdown -------------------------------------------------------------------------------

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")  # |---|:--:|


def _table_starts(lines: list[str], n: int) -> bool:
    """Whether a table (a `|` header row, then its delimiter row) starts at line n."""
    return (
        lines[n].lstrip().startswith("|")
        and n + 1 < len(lines)
        and "-" in lines[n + 1]
        and _DELIMITER.match(lines[n + 1].rstrip("\n")) is not None
    )


def _blocks(text: str) -> list[list[str]]:
    """The text's blocks: a fenced code block, a table, or a paragraph (lines between blank
    lines), each a list of lines (with their newlines)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fence: str | None = None
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        found = _FENCE.match(line.rstrip("\n"))
        if fence is None and found:
            if current:
                blocks.append(current)
            current, fence = [line], found.group(2)
            continue
        if fence is None and current and _table_starts(lines, n):  # no blank line before it
            blocks.append(current)
            current = []
        current.append(line)
        if fence is not None:
            if (  # a closing fence: the opener's character, at least as long, nothing after
                found
                and found.group(2)[0] == fence[0]
                and len(found.group(2)) >= len(fence)
                and not found.group(3).strip()
            ):
                blocks.append(current)
                current, fence = [], None
        elif not line.strip():
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _split_block(block: list[str], limit: int, lead: str = "") -> list[str]:
    """A block too long for one part, cut between lines, the first part starting with `lead`
    (what went before it): a fence is closed and reopened, a table repeats its header; a
    single line too long is cut on a character boundary."""
    first = block[0].rstrip("\n")
    found = _FENCE.match(first)
    opener = block[0] if found else ""
    closer = (found.group(1) + found.group(2) + "\n") if found else ""
    is_table = not found and len(block) > 2 and _table_starts(block, 0)
    header = "".join(block[:2]) if is_table else ""
    body = block[1:] if found else block[2:] if is_table else block
    if found and body and _FENCE.match(body[-1].rstrip("\n")):
        body = body[:-1]  # the closing fence is added to every part
    parts: list[str] = []
    current = ""

    def room() -> int:
        prefix = lead if not parts else ""
        return limit - len((prefix + opener + header + closer).encode())

    def close() -> None:
        prefix = lead if not parts else ""
        parts.append(prefix + opener + header + current + closer)

    for line in body:
        while len((current + line).encode()) > room():
            if current:
                close()
                current = ""
                continue
            if lead and not parts:  # what went before leaves no room: it goes alone
                parts.append(lead)
                continue
            cut = line.encode()[: max(room(), 1)].decode(errors="ignore") or line[:1]
            current = cut + ("\n" if closer and not cut.endswith("\n") else "")
            close()
            current, line = "", line[len(cut) :]
        current += line
    if current or not parts:
        close()
    return parts


def split_markdown(text: str, limit: int = MARKDOWN_LIMIT) -> list[str]:
    """A markdown text as parts of at most `limit` bytes each, cut between blocks where it can
    (see the module docstring); joined, the parts show the whole text."""
    parts: list[str] = []
    current = ""
    for block in _blocks(text):
        chunk = "".join(block)
        if len((current + chunk).encode()) <= limit:
            current += chunk
            continue
        if len(chunk.encode()) <= limit:
            if current.strip():
                parts.append(current)
            current = chunk
            continue
        lead = current if current.strip() else ""  # the block starts after what is there
        pieces = _split_block(block, limit, lead)
        parts.extend(pieces[:-1])
        current = pieces[-1]  # the block's last piece may take the blocks after it
    if current.strip():
        parts.append(current)
    return [p.rstrip("\n") for p in parts]


# -- sending -------------------------------------------------------------------------------------


class WebhookClient:
    """Posts to the configured group robots, 20 a minute each across every process."""

    def __init__(
        self,
        hooks: Mapping[str, WebhookSettings],
        store: Store,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hooks = hooks
        self.store = store
        self.session = session or requests.Session()
        self.timeout = timeout
        self.sleep = sleep

    def hook(self, name: str) -> WebhookSettings:
        settings = self.hooks.get(name)
        if settings is None:
            known = ", ".join(self.hooks) or "none"
            raise ConfigError(f"no webhook {name!r} is configured (known: {known})")
        return settings

    def reserve(self, name: str) -> None:
        """Take one of the robot's 20 messages this minute, or raise RateLimited saying when.
        The window is the robot's (its key, hashed: never stored), however many names point
        at it."""
        robot = hashlib.sha256(self.hook(name).key.encode()).hexdigest()[:24]
        wait = self.store.reserve([f"webhook:{robot}"], ROBOT_LIMITS)
        if wait > 0:
            raise RateLimited(
                f"webhook {name!r}: 20 messages a minute; this one may go in {wait:.0f} s",
                retry_after=wait,
            )

    def send(self, name: str, message: WebhookMessage, *, wait: bool = True) -> dict[str, Any]:
        """Post one message, waiting for the robot's window (never dropping) unless `wait` is
        False, in which case RateLimited is raised."""
        body = message.body()  # checked before a turn of the window is taken
        while True:
            try:
                self.reserve(name)
                break
            except RateLimited as exc:
                if not wait:
                    raise
                self.sleep(exc.retry_after)
        return self.post(name, body)

    def send_markdown(self, name: str, text: str) -> list[dict[str, Any]]:
        """A markdown text of any length, in parts (see `split_markdown`), in order."""
        return [self.send(name, part) for part in WebhookMarkdown(text).parts()]

    def post(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One POST to the robot (no window taken: `send` takes it). Errors never show the key."""
        hook = self.hook(name)
        url = f"{hook.api_base_url}/cgi-bin/webhook/send"
        try:
            response = self.session.post(
                url, params={"key": hook.key}, json=dict(body), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise failed_exchange(
                exc, f"webhook {name!r}", hook.api_base_url, self.timeout[1],
                "the message may have been posted",
            ) from None  # fmt: skip
        if response.status_code >= 500:
            raise NoAnswer(f"webhook {name!r}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise ApiError(-1, f"HTTP {response.status_code}, not JSON", "webhook/send") from None
        code = int(data.get("errcode", 0)) if isinstance(data, dict) else -1
        if code:
            raise ApiError(code, str(data.get("errmsg", "")), "webhook/send", app=name)
        return dict(data)

    def upload(self, name: str, filename: str, data: bytes) -> str:
        """Upload a file for a `WebhookFile` (kept 3 days); its media_id."""
        hook = self.hook(name)
        url = f"{hook.api_base_url}/cgi-bin/webhook/upload_media"
        try:
            response = self.session.post(
                url, params={"key": hook.key, "type": "file"},
                files={"media": (filename, data)}, timeout=self.timeout,
            )  # fmt: skip
            result = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise NoAnswer(f"webhook {name!r}: upload failed ({type(exc).__name__})") from None
        code = int(result.get("errcode", 0))
        if code:
            raise ApiError(code, str(result.get("errmsg", "")), "webhook/upload_media", app=name)
        return str(result["media_id"])


def article(title: str, url: str, description: str = "", picurl: str = "") -> WebhookArticle:
    """A news article (a shorthand for `WebhookNews((article(...), ...))`)."""
    return WebhookArticle(title, url, description, picurl)


__all__: Sequence[str] = (
    "WebhookArticle", "WebhookClient", "WebhookFile", "WebhookImage", "WebhookMarkdown",
    "WebhookMessage", "WebhookNews", "WebhookTemplateCard", "WebhookText", "article",
    "split_markdown",
)  # fmt: skip
