"""miniprogram_notice: the mini-program notification card, with its 90200-90204 limits.

The notes leave open whether the "汉字" limits (title/description 4-12, key ≤10, value ≤30) count
characters or 3-byte UTF-8 units; we count characters (``len(str)``), which fits the official
example and keeps ASCII titles usable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from callback.outbound.checks import coerce, count, flag, identifier, text
from callback.outbound.messages import Message

MAX_ITEMS = 10
APPID_MISSING = 90200
TOO_MANY_ITEMS = 90201
BAD_KEY = 90202
BAD_VALUE = 90203
BAD_PAGE = 90204
_ITEMS = "miniprogram_notice.content_item"


@dataclass(frozen=True, slots=True)
class NoticeItem:
    """One content_item row: key ≤10 and value ≤30 characters, neither empty.

    A row with both empty is allowed here and left out of the notice, as WeCom ignores it.
    """

    key: str
    value: str

    def __post_init__(self) -> None:
        if self.key == "" and self.value == "":
            return
        text(f"{_ITEMS}.key", self.key, required=True, max_chars=10, code=BAD_KEY)
        text(f"{_ITEMS}.value", self.value, required=True, max_chars=30, code=BAD_VALUE)

    @property
    def blank(self) -> bool:
        """Both key and value are empty (WeCom ignores such a row)."""
        return self.key == "" and self.value == ""


@dataclass(frozen=True, slots=True)
class MiniProgramNotice(Message):
    """A notice card opening `page` of mini program `appid`; sent without agentid, never to @all.

    `items` are NoticeItem or (key, value) pairs (or a mapping key -> value), order kept; blank
    rows are dropped before the 10-item limit is checked.
    """

    appid: str
    title: str
    page: str = ""
    description: str = ""
    items: Sequence[NoticeItem | tuple[str, str]] | Mapping[str, str] = ()
    emphasis_first_item: bool = False
    msgtype: ClassVar[str] = "miniprogram_notice"
    uses_agent: ClassVar[bool] = False

    def __post_init__(self) -> None:
        where = "miniprogram_notice"
        identifier(f"{where}.appid", self.appid, code=APPID_MISSING)
        text(f"{where}.title", self.title, required=True, min_chars=4, max_chars=12)
        text(f"{where}.description", self.description, min_chars=4, max_chars=12)
        text(f"{where}.page", self.page, max_bytes=1024, code=BAD_PAGE)
        flag(f"{where}.emphasis_first_item", self.emphasis_first_item)
        given = list(self.items.items()) if isinstance(self.items, Mapping) else self.items
        items = tuple(item for item in coerce(_ITEMS, given, NoticeItem, _ITEMS) if not item.blank)
        count(_ITEMS, items, 0, MAX_ITEMS, code=TOO_MANY_ITEMS)
        object.__setattr__(self, "items", items)

    @property
    def content_item(self) -> tuple[NoticeItem, ...]:
        """The rows that are sent, in order."""
        return cast(tuple[NoticeItem, ...], self.items)

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"appid": self.appid}
        if self.page:
            body["page"] = self.page
        body["title"] = self.title
        if self.description:
            body["description"] = self.description
        body["emphasis_first_item"] = self.emphasis_first_item
        if self.items:
            body["content_item"] = [{"key": i.key, "value": i.value} for i in self.content_item]
        return body
