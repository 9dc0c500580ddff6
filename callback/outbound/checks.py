"""The field checks behind every outbound value: each raises a ValidationError naming the limit."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from callback.errors import ValidationError

T = TypeVar("T")
SHOWN_CHARS = 40
_URL_RE = re.compile(r"https?://[^/?#\s]+\S*", re.IGNORECASE)
_WHITESPACE_RE = re.compile(r"\s")


def nbytes(text: str) -> int:
    """Length in UTF-8 bytes, the unit of most WeCom limits."""
    return len(text.encode("utf-8"))


def show(value: object) -> str:
    """A value for an error message: quoted, and shortened when long."""
    if isinstance(value, str):
        shown = value if len(value) <= SHOWN_CHARS else value[: SHOWN_CHARS - 10] + "…"
        return json.dumps(shown, ensure_ascii=False)
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 10] + "…"


def fail(
    field: str,
    value: object,
    problem: str,
    limit: str,
    *,
    code: int | None = None,
    hint: str = "",
    subject: str | None = None,
) -> NoReturn:
    """Raise `field: VALUE PROBLEM; WeCom requires LIMIT[; HINT]`.

    `subject` replaces VALUE in the message (None as a value shows nothing).
    """
    if subject is None:
        subject = "" if value is None else show(value)
    said = " ".join(part for part in (subject, problem) if part)
    message = f"{field}: {said}; WeCom requires {limit}"
    raise ValidationError(
        f"{message}; {hint}" if hint else message, field=field, value=value, limit=limit, code=code
    )


def relocate(error: ValidationError, old: str, new: str) -> ValidationError:
    """The same error with its field path prefix `old` replaced by `new` (adds a list index)."""
    if not error.field.startswith(old):
        return error
    field = new + error.field[len(old) :]
    return ValidationError(
        str(error).replace(error.field, field, 1),
        field=field,
        value=error.value,
        limit=error.limit,
        code=error.code,
    )


def text(
    field: str,
    value: object,
    *,
    required: bool = False,
    min_chars: int = 0,
    max_chars: int | None = None,
    max_bytes: int | None = None,
    code: int | None = None,
    missing: int | None = None,
) -> str:
    """A string; `required` refuses ""; lengths are checked only when it is non-empty."""
    if not isinstance(value, str):
        fail(field, value, f"is {type(value).__name__}", "a string", code=code)
    if not value:
        if required:
            fail(field, value, "is empty", "a non-empty value", code=missing or code)
        return value
    if max_chars is not None and not min_chars <= len(value) <= max_chars:
        span = f"{min_chars} to {max_chars}" if min_chars else f"at most {max_chars}"
        fail(field, value, f"is {len(value)} characters", f"{span} characters", code=code)
    if max_bytes is not None and nbytes(value) > max_bytes:
        fail(field, value, f"is {nbytes(value)} bytes", f"at most {max_bytes} bytes", code=code)
    return value


def identifier(field: str, value: object, *, code: int | None = None) -> str:
    """A required id (media_id, appid, msgid…): non-empty, no whitespace, nothing stripped."""
    ident = text(field, value, required=True, code=code)
    if _WHITESPACE_RE.search(ident):
        fail(field, ident, "contains whitespace", "an id without whitespace", code=code)
    return ident


def url(field: str, value: object, *, required: bool = False, code: int | None = None) -> str:
    """An http(s) URL of at most 2048 bytes ("" allowed unless required)."""
    link = text(field, value, required=required, max_bytes=2048, code=code)
    if link and not _URL_RE.fullmatch(link):
        fail(field, link, "is not an http(s) URL", "http:// or https://, no spaces", code=code)
    return link


def count(
    field: str, items: Sequence[Any], low: int, high: int, *, code: int | None = None
) -> None:
    """A list size in low..high."""
    if not low <= len(items) <= high:
        span = f"at most {high}" if low == 0 else f"{low} to {high}"
        noun = "item" if len(items) == 1 else "items"
        fail(field, items, "", f"{span} items", code=code, subject=f"{len(items)} {noun}")


def integer(field: str, value: object, allowed: Sequence[int], *, code: int | None = None) -> int:
    """An integer (a bool is not one) from `allowed`."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        choices = ", ".join(str(a) for a in allowed)
        fail(field, value, "is not allowed", f"one of {choices}", code=code)
    return value


def flag(field: str, value: object) -> bool:
    """A real bool (1 or "yes" are refused, not guessed)."""
    if not isinstance(value, bool):
        fail(field, value, f"is {type(value).__name__}", "true or false")
    return value


def sequence(field: str, value: object) -> tuple[Any, ...]:
    """A list or tuple as a tuple (a lone string is refused: it would be read letter by letter)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        fail(field, value, f"is {type(value).__name__}", "a list or tuple")
    return tuple(value)


def coerce(field: str, value: object, kind: type[T], generic: str) -> tuple[T, ...]:
    """A list of `kind`, built from instances, mappings (keywords) or pairs (positional).

    Errors from building an item name its index: `generic` (e.g. ``news.article``) becomes
    ``FIELD[i]``.
    """
    built: list[T] = []
    for index, item in enumerate(sequence(field, value)):
        if isinstance(item, kind):
            built.append(item)
            continue
        where = f"{field}[{index}]"
        try:
            if isinstance(item, Mapping):
                built.append(kind(**item))
            elif isinstance(item, list | tuple):
                built.append(kind(*item))
            else:
                fail(where, item, f"is {type(item).__name__}", f"a {kind.__name__} or a mapping")
        except ValidationError as error:
            raise relocate(error, generic, where) from None
        except TypeError as error:
            fail(where, item, f"does not fit {kind.__name__} ({error})", "its documented fields")
    return tuple(built)
