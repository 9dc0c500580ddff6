"""Typed readers for JSON request bodies that raise the matching WeCom errcode on a bad field."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .errors import CONTENT_TOO_LONG, INVALID_PARAMETER, ApiError

JsonObject = Mapping[str, Any]


def nbytes(text: str) -> int:
    """Length of text in UTF-8 bytes, the unit of most WeCom limits."""
    return len(text.encode("utf-8"))


def _label(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def string(
    parent: JsonObject,
    key: str,
    *,
    where: str = "",
    required: int | None = None,
    max_bytes: int | None = None,
    max_chars: int | None = None,
    too_long: int = CONTENT_TOO_LONG,
    invalid: int = INVALID_PARAMETER,
) -> str:
    """Read a string field ("" when absent); `required` is the errcode for absent or empty."""
    label = _label(where, key)
    value = parent.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(invalid, f"{label} must be a string")
    if not value and required is not None:
        raise ApiError(required, f"{label} is required")
    if max_bytes is not None and nbytes(value) > max_bytes:
        raise ApiError(too_long, f"{label} exceeds {max_bytes} bytes")
    if max_chars is not None and len(value) > max_chars:
        raise ApiError(too_long, f"{label} exceeds {max_chars} characters")
    return value


def integer(
    parent: JsonObject,
    key: str,
    *,
    default: int,
    where: str = "",
    allowed: Collection[int] | None = None,
    invalid: int = INVALID_PARAMETER,
) -> int:
    """Read an integer field (JSON booleans are not integers), default when absent."""
    value = parent.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(invalid, f"{_label(where, key)} must be an integer")
    if allowed is not None and value not in allowed:
        raise ApiError(invalid, f"{_label(where, key)} must be one of {sorted(allowed)}")
    return value


def mapping(
    parent: JsonObject,
    key: str,
    *,
    where: str = "",
    required: int | None = None,
    invalid: int = INVALID_PARAMETER,
) -> JsonObject | None:
    """Read an object field, None when absent (or raise `required` when it must be there)."""
    value = parent.get(key)
    if value is None:
        if required is not None:
            raise ApiError(required, f"{_label(where, key)} is required")
        return None
    if not isinstance(value, dict):
        raise ApiError(invalid, f"{_label(where, key)} must be an object")
    return value


def objects(
    parent: JsonObject,
    key: str,
    *,
    where: str = "",
    min_items: int = 0,
    max_items: int | None = None,
    invalid: int = INVALID_PARAMETER,
    too_many: int | None = None,
) -> list[JsonObject]:
    """Read an array of objects with a size range ([] when absent and min_items is 0)."""
    label = _label(where, key)
    value = parent.get(key)
    if value is None:
        value = []
    if not isinstance(value, list):
        raise ApiError(invalid, f"{label} must be an array")
    if len(value) < min_items:
        raise ApiError(invalid, f"{label} needs at least {min_items} item(s)")
    if max_items is not None and len(value) > max_items:
        code = invalid if too_many is None else too_many
        raise ApiError(code, f"{label} has {len(value)} items, at most {max_items} allowed")
    items: list[JsonObject] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApiError(invalid, f"{label}[{index}] must be an object")
        items.append(item)
    return items


def flag(parent: JsonObject, key: str, *, where: str = "") -> bool:
    """Read an optional JSON boolean."""
    value: Any = parent.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(INVALID_PARAMETER, f"{_label(where, key)} must be true or false")
    return value
