"""Passive replies: the values a handler may return, and their plaintext XML or JSON.

In a passive reply the roles flip: ToUserName is the member, FromUserName the corp id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from callback.inbound.xmlcodec import element

TEXT_LIMIT_BYTES = 2048


@dataclass(frozen=True, slots=True)
class Reply:
    """Base of passive replies; subclasses say their MsgType and body fields."""

    msg_type = ""

    def body(self) -> dict[str, Any]:
        """The type-specific fields, in WeCom's XML names."""
        raise NotImplementedError

    def fields(self, to_user: str, from_user: str, create_time: int) -> dict[str, Any]:
        """Every field of the reply plaintext, in order."""
        head = {
            "ToUserName": to_user,
            "FromUserName": from_user,
            "CreateTime": create_time,
            "MsgType": self.msg_type,
        }
        return head | self.body()

    def render(
        self, to_user: str, from_user: str, create_time: int, *, as_json: bool = False
    ) -> bytes:
        """The reply plaintext: XML, or JSON for callbacks that arrived as JSON."""
        fields = self.fields(to_user, from_user, create_time)
        if as_json:
            return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        return ("<xml>" + "".join(element(k, v) for k, v in fields.items()) + "</xml>").encode()


@dataclass(frozen=True, slots=True)
class TextReply(Reply):
    """Text; WeCom truncates a passive text beyond 2048 bytes, so delivery pushes a longer one
    through the send API, split on character boundaries."""

    content: str
    msg_type = "text"

    def body(self) -> dict[str, Any]:
        return {"Content": self.content}


@dataclass(frozen=True, slots=True)
class ImageReply(Reply):
    media_id: str
    msg_type = "image"

    def body(self) -> dict[str, Any]:
        return {"Image": {"MediaId": self.media_id}}


@dataclass(frozen=True, slots=True)
class VoiceReply(Reply):
    media_id: str
    msg_type = "voice"

    def body(self) -> dict[str, Any]:
        return {"Voice": {"MediaId": self.media_id}}


@dataclass(frozen=True, slots=True)
class VideoReply(Reply):
    media_id: str
    title: str = ""
    description: str = ""
    msg_type = "video"

    def body(self) -> dict[str, Any]:
        return {
            "Video": {
                "MediaId": self.media_id,
                "Title": self.title,
                "Description": self.description,
            }
        }


@dataclass(frozen=True, slots=True)
class Article:
    """One news article: title, description, picture and link."""

    title: str
    description: str = ""
    pic_url: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class NewsReply(Reply):
    """News, 1 to 8 articles (WeCom's app-message limit; the passive maximum is unconfirmed)."""

    articles: tuple[Article, ...]
    msg_type = "news"

    def __post_init__(self) -> None:
        if not 1 <= len(self.articles) <= 8:
            raise ValueError(
                f"news reply: articles must hold 1 to 8 items, got {len(self.articles)}"
            )

    def body(self) -> dict[str, Any]:
        items = [
            {"Title": a.title, "Description": a.description, "PicUrl": a.pic_url, "Url": a.url}
            for a in self.articles
        ]
        return {"ArticleCount": len(items), "Articles": {"item": items}}


@dataclass(frozen=True, slots=True)
class UpdateButtonReply(Reply):
    """Answer to template_card_event: grey out the clicked card's button with new text."""

    replace_name: str
    msg_type = "update_button"

    def body(self) -> dict[str, Any]:
        return {"Button": {"ReplaceName": self.replace_name}}


@dataclass(frozen=True, slots=True)
class UpdateTemplateCardReply(Reply):
    """Answer to template_card_event: replace the clicking member's card (CamelCase XML fields)."""

    card: Mapping[str, Any]
    msg_type = "update_template_card"

    def body(self) -> dict[str, Any]:
        return {"TemplateCard": _camel(self.card)}


def _camel(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {"".join(p.title() for p in k.split("_")): _camel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_camel(v) for v in value]
    return value


def joined(result: object) -> object:
    """A generator handler's pieces (str) joined into one text; anything else as it is."""
    if result is None or isinstance(result, str | Reply | bytes):
        return result
    if isinstance(result, Iterator):
        pieces = list(result)
        if all(isinstance(piece, str) for piece in pieces):
            return "".join(pieces)
        kinds = sorted({type(piece).__name__ for piece in pieces if not isinstance(piece, str)})
        raise TypeError(f"a generator handler yielded {', '.join(kinds)}; expected str pieces")
    return result


def as_reply(result: object) -> Reply | None:
    """Normalise a handler's return value: str -> TextReply, None -> no reply."""
    if result is None or isinstance(result, Reply):
        return result
    if isinstance(result, str):
        return TextReply(result) if result else None
    raise TypeError(f"handler returned {type(result).__name__}; expected str, Reply or None")
