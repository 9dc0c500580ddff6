"""The bases of inbound values: `Message`, `UserMessage` and `Event`, and `wx()`, which maps an
attribute to the WeCom field it is read from (see `callback.inbound.messages` for the parsing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

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


def wx(name: str, default: Any = "") -> Any:
    """Declare an attribute read from WeCom field `name`."""
    if isinstance(default, Mapping):
        return field(default_factory=lambda: _EMPTY, metadata={"wx": name})
    return field(default=default, metadata={"wx": name})


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
