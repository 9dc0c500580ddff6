"""The message base class and the text types (text, markdown, textcard) with their limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from callback.outbound.checks import fail, nbytes, text, url

TEXT_LIMIT_BYTES = 2048
#: How far back from the limit Text.split looks for a newline or space to cut at.
SPLIT_WINDOW_BYTES = 200
EMPTY_TEXT = 44004
TOO_LARGE = 45002
TITLE_MISSING = 41016
DESCRIPTION_MISSING = 41033


@dataclass(frozen=True, slots=True)
class Message:
    """Base of the message/send payloads: `msgtype` and the object under that key."""

    msgtype: ClassVar[str] = ""
    #: The `safe` values this type takes; a type with only {0} sends no `safe` field at all.
    safe_levels: ClassVar[frozenset[int]] = frozenset({0})
    #: miniprogram_notice is sent without agentid and cannot go to @all.
    uses_agent: ClassVar[bool] = True

    def payload(self) -> dict[str, Any]:
        """The object that goes under the `msgtype` key."""
        raise NotImplementedError

    def check_sendable(self) -> None:
        """Raise ValidationError when this value cannot go out in one request as it is."""


@dataclass(frozen=True, slots=True)
class Text(Message):
    """Plain text; over 2048 bytes is allowed here, and `split` makes the parts to send."""

    content: str
    msgtype: ClassVar[str] = "text"
    safe_levels: ClassVar[frozenset[int]] = frozenset({0, 1})

    def __post_init__(self) -> None:
        text("text.content", self.content, required=True, code=EMPTY_TEXT)

    def payload(self) -> dict[str, Any]:
        return {"content": self.content}

    def check_sendable(self) -> None:
        size = nbytes(self.content)
        if size > TEXT_LIMIT_BYTES:
            fail(
                "text.content",
                self.content,
                f"is {size} bytes",
                f"at most {TEXT_LIMIT_BYTES} bytes",
                code=TOO_LARGE,
                hint="WeCom would truncate it; send Text.split() parts (build_send_bodies does)",
            )

    def split(self, limit: int = TEXT_LIMIT_BYTES) -> tuple[Text, ...]:
        """Parts of at most `limit` UTF-8 bytes that join back to the content exactly.

        A cut never falls inside a character; it goes after the last newline (else space) in the
        final 200 bytes before the limit when there is one. Short content gives ``(self,)``.
        """
        if limit < 4:
            raise ValueError(f"limit must be at least 4 bytes (one character), got {limit}")
        data = self.content.encode("utf-8")
        window = min(SPLIT_WINDOW_BYTES, limit // 2)
        parts: list[bytes] = []
        start = 0
        while len(data) - start > limit:
            end = start + limit
            while data[end] & 0xC0 == 0x80:  # data[end] continues a multi-byte character
                end -= 1
            floor = max(start + 1, end - window)
            cut = data.rfind(b"\n", floor, end)
            if cut < 0:
                cut = data.rfind(b" ", floor, end)
            end = cut + 1 if cut >= 0 else end
            parts.append(data[start:end])
            start = end
        parts.append(data[start:])
        return tuple(Text(part.decode("utf-8")) for part in parts)


@dataclass(frozen=True, slots=True)
class Markdown(Message):
    """WeCom's markdown subset, at most 2048 bytes (never split: a cut could break the markup)."""

    content: str
    msgtype: ClassVar[str] = "markdown"

    def __post_init__(self) -> None:
        text("markdown.content", self.content, required=True, code=EMPTY_TEXT)
        size = nbytes(self.content)
        if size > TEXT_LIMIT_BYTES:
            fail(
                "markdown.content",
                self.content,
                f"is {size} bytes",
                f"at most {TEXT_LIMIT_BYTES} bytes",
                code=TOO_LARGE,
                hint="markdown cannot be split safely (a cut could break a link or tag); "
                "shorten it, or send Text, which splits",
            )

    def payload(self) -> dict[str, Any]:
        return {"content": self.content}


@dataclass(frozen=True, slots=True)
class TextCard(Message):
    """A card with title, description and link; title/description limits count characters."""

    title: str
    description: str
    url: str
    btntxt: str = ""
    msgtype: ClassVar[str] = "textcard"

    def __post_init__(self) -> None:
        text("textcard.title", self.title, required=True, max_chars=128, missing=TITLE_MISSING)
        text(
            "textcard.description",
            self.description,
            required=True,
            max_chars=512,
            missing=DESCRIPTION_MISSING,
        )
        url("textcard.url", self.url, required=True)
        text("textcard.btntxt", self.btntxt, max_chars=4)

    def payload(self) -> dict[str, Any]:
        body = {"title": self.title, "description": self.description, "url": self.url}
        return body | ({"btntxt": self.btntxt} if self.btntxt else {})
