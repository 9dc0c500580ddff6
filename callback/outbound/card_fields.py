"""Readers for template_card JSON blocks: each checks one field and names its path on failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from callback.outbound.checks import count, fail, integer, sequence, text, url

JsonObject = Mapping[str, Any]
MAX_KEY_BYTES = 1024


def link(block: JsonObject, where: str, types: range) -> None:
    """type 1 needs url, type 2 needs appid (pagepath optional)."""
    kind = integer(f"{where}.type", block.get("type", 0), types)
    url(f"{where}.url", block.get("url", ""), required=kind == 1)
    string(block, "appid", where, required=kind == 2)
    string(block, "pagepath", where)


def key(parent: JsonObject, name: str, where: str) -> str:
    """A required callback key (or question_key) of at most 1024 bytes."""
    return string(parent, name, where, required=True, max_bytes=MAX_KEY_BYTES)


def string(
    parent: JsonObject,
    name: str,
    where: str,
    *,
    required: bool = False,
    max_bytes: int | None = None,
    max_chars: int | None = None,
    code: int | None = None,
    why: str = "",
) -> str:
    """A string field ("" when absent or null); `required` refuses an empty one."""
    field = f"{where}.{name}"
    value = parent.get(name)
    if value is None:
        value = ""
    if required and value == "":
        fail(field, None, "is missing", f"a value{why}", code=code)
    return text(field, value, max_bytes=max_bytes, max_chars=max_chars, code=code)


def block(
    parent: JsonObject, name: str, where: str, *, required: bool = False
) -> JsonObject | None:
    """An object field, None when absent (unless `required`)."""
    value = parent.get(name)
    if value is None:
        if required:
            fail(f"{where}.{name}", None, "is missing", "this block")
        return None
    if not isinstance(value, Mapping):
        fail(f"{where}.{name}", value, f"is {type(value).__name__}", "a JSON object")
    return value


def blocks(
    parent: JsonObject, name: str, where: str, low: int, high: int
) -> tuple[JsonObject, ...]:
    """A list of low..high objects (absent counts as empty)."""
    field = f"{where}.{name}"
    value = parent.get(name)
    items = () if value is None else sequence(field, value)
    count(field, items, low, high)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            fail(f"{field}[{index}]", item, f"is {type(item).__name__}", "a JSON object")
    return items


def unique(values: Sequence[Any], field: str) -> None:
    """Refuse the first repeated value."""
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        fail(field, seen[0], "is repeated", "unique values")
