"""The article messages: news (links) and mpnews (stored HTML articles), 1 to 8 articles each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from callback.outbound.checks import coerce, count, fail, identifier, text, url
from callback.outbound.messages import TITLE_MISSING, Message

MAX_ARTICLES = 8
TOO_MANY_ARTICLES = 45008
#: mpnews content limit, "666 K bytes", read as 666 000 (the stricter of 1000 and 1024).
MPNEWS_CONTENT_BYTES = 666_000
AUTHOR_TOO_LONG = 45032


@dataclass(frozen=True, slots=True)
class NewsArticle:
    """One news article: opens `url`, or the mini-program page appid + pagepath (given together)."""

    title: str
    url: str = ""
    description: str = ""
    picurl: str = ""
    appid: str = ""
    pagepath: str = ""

    def __post_init__(self) -> None:
        where = "news.article"
        text(f"{where}.title", self.title, required=True, max_bytes=128, missing=TITLE_MISSING)
        text(f"{where}.description", self.description, max_bytes=512)
        url(f"{where}.url", self.url)
        url(f"{where}.picurl", self.picurl)
        text(f"{where}.appid", self.appid)
        text(f"{where}.pagepath", self.pagepath, max_bytes=128)
        if self.appid:
            identifier(f"{where}.appid", self.appid)
        if bool(self.appid) != bool(self.pagepath):
            missing = "pagepath" if self.appid else "appid"
            fail(f"{where}.{missing}", "", "is empty", "appid and pagepath together")
        if not (self.url or self.appid):
            fail(f"{where}.url", "", "is empty", "a url, or appid and pagepath")

    def payload(self) -> dict[str, str]:
        """The article object; empty optional fields are left out."""
        fields = {
            "title": self.title,
            "description": self.description,
            "url": self.url,
            "picurl": self.picurl,
            "appid": self.appid,
            "pagepath": self.pagepath,
        }
        return {key: value for key, value in fields.items() if value}


@dataclass(frozen=True, slots=True)
class News(Message):
    """1 to 8 NewsArticle (or mappings of their fields); news takes no `safe`."""

    articles: Sequence[NewsArticle | Mapping[str, str]]
    msgtype: ClassVar[str] = "news"

    def __post_init__(self) -> None:
        articles = coerce("news.articles", self.articles, NewsArticle, "news.article")
        count("news.articles", articles, 1, MAX_ARTICLES, code=TOO_MANY_ARTICLES)
        object.__setattr__(self, "articles", articles)

    def payload(self) -> dict[str, Any]:
        return {"articles": [a.payload() for a in cast(tuple[NewsArticle, ...], self.articles)]}


@dataclass(frozen=True, slots=True)
class MpNewsArticle:
    """One mpnews article: an HTML page stored by WeCom, with a thumbnail media_id."""

    title: str
    thumb_media_id: str
    content: str
    author: str = ""
    content_source_url: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        where = "mpnews.article"
        text(f"{where}.title", self.title, required=True, max_bytes=128, missing=TITLE_MISSING)
        identifier(f"{where}.thumb_media_id", self.thumb_media_id)
        text(f"{where}.content", self.content, required=True, max_bytes=MPNEWS_CONTENT_BYTES)
        text(f"{where}.author", self.author, max_bytes=64, code=AUTHOR_TOO_LONG)
        url(f"{where}.content_source_url", self.content_source_url)
        text(f"{where}.digest", self.digest, max_bytes=512)

    def payload(self) -> dict[str, str]:
        """The article object; empty optional fields are left out."""
        fields = {
            "title": self.title,
            "thumb_media_id": self.thumb_media_id,
            "author": self.author,
            "content_source_url": self.content_source_url,
            "content": self.content,
            "digest": self.digest,
        }
        return {key: value for key, value in fields.items() if value}


@dataclass(frozen=True, slots=True)
class MpNews(Message):
    """1 to 8 MpNewsArticle (or mappings); the only type that takes safe=2."""

    articles: Sequence[MpNewsArticle | Mapping[str, str]]
    msgtype: ClassVar[str] = "mpnews"
    safe_levels: ClassVar[frozenset[int]] = frozenset({0, 1, 2})

    def __post_init__(self) -> None:
        articles = coerce("mpnews.articles", self.articles, MpNewsArticle, "mpnews.article")
        count("mpnews.articles", articles, 1, MAX_ARTICLES, code=TOO_MANY_ARTICLES)
        object.__setattr__(self, "articles", articles)

    def payload(self) -> dict[str, Any]:
        return {"articles": [a.payload() for a in cast(tuple[MpNewsArticle, ...], self.articles)]}
