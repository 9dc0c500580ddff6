"""The bases of inbound values (`Message`, `UserMessage`, `Event`) and how their attributes are
declared and read: `wx()` maps an attribute to the WeCom field(s) it is read from, `read()` reads
them from a parsed field mapping by the attribute's annotation, and `freeze()` makes that mapping
immutable all the way down. `callback.inbound.messages` parses plaintexts into these values.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any, cast, get_args, get_origin, get_type_hints

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """`value` made immutable all the way down: mappings become read-only copies
    (MappingProxyType), lists and tuples become tuples, anything else is kept."""
    if isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            frozen[key] = freeze(item)
        return MappingProxyType(frozen)
    if isinstance(value, list | tuple):
        return tuple([freeze(item) for item in value])
    return value


def wx(name: str, default: Any = "", *aliases: str) -> Any:
    """Declare an attribute read from WeCom field `name`, else from the first of `aliases` present.

    A name may be a dotted path into nested elements ("BatchJob.JobId"); a repeated element at any
    step contributes every occurrence, in order. The attribute's annotation says how the value is
    read (see `read`)."""
    paths = (name, *aliases)
    if isinstance(default, Mapping):
        return field(default_factory=lambda: _EMPTY, metadata={"wx": paths})
    return field(default=default, metadata={"wx": paths})


# -- reading declared fields -------------------------------------------------------------------


def _child(node: Mapping[str, Any], name: str) -> Any:
    """`node[name]`, else the first child whose name differs only in case (`AgentId`)."""
    value = node.get(name)
    if value is None:
        folded = name.casefold()
        for key, item in node.items():
            if isinstance(key, str) and key.casefold() == folded:
                return item
    return value


def _nodes(node: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at `path` below `node`, in document order: a repeated element (a tuple) at any
    step contributes each occurrence, so PicList.item.PicMd5Sum finds one sum per PicList."""
    found = [node]
    for name in path:
        step: list[Any] = []
        for item in found:
            if isinstance(item, Mapping):
                value = _child(item, name)
                if isinstance(value, tuple):
                    step.extend(value)
                elif value is not None:
                    step.append(value)
        if not step:
            return step
        found = step
    return found


def _text(value: Any) -> str | None:
    """A leaf's text (JSON scalars as text); None for an element with children, or null."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, Mapping | tuple):
        return None
    return str(value)


def _number(kind: type[int] | type[float], value: Any) -> int | float | None:
    """The number in a leaf, None when it is empty or malformed (the text stays in `.raw`)."""
    if isinstance(value, Mapping | tuple) or value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON 1e400 is inf
        return None


Reader = Callable[[list[Any]], Any]  # the values found (never empty) -> the attribute, or None


def _reader(hint: Any) -> Reader:
    """How an attribute of this annotation is read from the values found at its path."""
    if hint is str:
        return lambda found: _text(found[0])
    if hint in (int, int | None):
        return lambda found: _number(int, found[0])
    if hint is float:
        return lambda found: _number(float, found[0])
    if get_origin(hint) is tuple:
        item = get_args(hint)[0]
        if dataclasses.is_dataclass(item):  # one value per occurrence, each with its own fields
            part = cast(type[Any], item)
            return lambda found: tuple(
                part(**read(part, value if isinstance(value, Mapping) else _EMPTY))
                for value in found
            )
        return lambda found: tuple(t for t in map(_text, found) if t is not None)
    if get_origin(hint) is Mapping:
        return lambda found: found[0] if isinstance(found[0], Mapping) else None
    raise TypeError(f"wx() cannot read an attribute annotated {hint!r}")


@cache
def _plan(cls: type[Any]) -> tuple[tuple[str, tuple[tuple[str, ...], ...], Reader], ...]:
    hints = get_type_hints(cls)
    return tuple(
        (f.name, tuple(tuple(p.split(".")) for p in f.metadata["wx"]), _reader(hints[f.name]))
        for f in dataclasses.fields(cls)
        if "wx" in f.metadata
    )


def read(cls: type[Any], node: Mapping[str, Any]) -> dict[str, Any]:
    """The `wx()` attributes of `cls` found in `node` (a frozen field mapping), typed by their
    annotation:

    - `str`, `int`, `float`: the first occurrence's text, converted; an element with children, an
      empty number or a malformed one is skipped (the attribute keeps its default);
    - `tuple[str, ...]`: the text of every occurrence, in order;
    - `tuple[Part, ...]`: one `Part` (a dataclass declared with `wx()`) per occurrence, read from
      that occurrence's own children;
    - `Mapping[str, Any]`: the element as a read-only mapping.

    The first of an attribute's paths that is present is read; absent attributes are left out,
    so they take their defaults."""
    values: dict[str, Any] = {}
    for name, paths, reader in _plan(cls):  # type: ignore[arg-type]  # a class is hashable
        for path in paths:
            found = _nodes(node, path)
            if found:
                value = reader(found)
                if value is not None:
                    values[name] = value
                break
    return values


@dataclass(frozen=True, slots=True)
class Message:
    """Any callback. Subclasses add typed fields; `raw` keeps every field as received, immutable
    all the way down (nested elements as read-only mappings, repeated ones as tuples)."""

    to_user: str = wx("ToUserName")
    from_user: str = wx("FromUserName")
    create_time: int = wx("CreateTime", 0)
    msg_type: str = wx("MsgType")
    agent_id: int | None = wx("AgentID", None)
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)
    #: The decrypted plaintext as received; the inbox keys events by its digest.
    plaintext: bytes = field(default=b"", repr=False, compare=False)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    @property
    def kind(self) -> str:
        """The event name for events, else the message type: what logs and metrics show."""
        return self.msg_type

    @property
    def dedup_key(self) -> str:
        """Identical across WeCom's retries of one callback, distinct between callbacks."""
        msg_id = self.raw.get("MsgId") or self.raw.get("msgid")  # an app's, or an AI bot's
        if msg_id not in (None, ""):
            return f"msg:{msg_id}"
        return "sha1:" + hashlib.sha1(self.plaintext).hexdigest()  # noqa: S324 - a key, not security


# -- member messages (MsgType != event) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserMessage(Message):
    """A message a member sent to the application; carries a MsgId."""

    msg_id: str = wx("MsgId")


# -- events (MsgType == event) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event(Message):
    """Any event; `event` is its name as sent (lowercase, except LOCATION)."""

    event: str = wx("Event")
    event_key: str = wx("EventKey")

    @property
    def kind(self) -> str:
        return self.event
