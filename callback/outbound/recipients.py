"""Who a message goes to: users, departments and tags (or @all), checked against WeCom's limits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callback.outbound.checks import fail, sequence

ALL = "@all"
MAX_USERS = 1000
MAX_PARTIES = 100
MAX_TAGS = 100
NO_RECIPIENTS = 82001
TOO_MANY_USERS = 40031
TOO_MANY_PARTIES = 82002
TOO_MANY_TAGS = 82003
_SEPARATORS = re.compile(r"[,|]")
_BAD_ID_CHARS = re.compile(r"[|\s]")


@dataclass(frozen=True, slots=True)
class Recipients:
    """Users, departments (parties) and tags, or everyone in the app's visible range.

    Accepts lists or tuples; ids keep their order and lose their duplicates. Party and tag ids are
    WeCom integers, given as int or digit strings. ``Recipients(users=["@all"])`` means everyone.
    """

    users: Sequence[str] = ()
    parties: Sequence[str | int] = ()
    tags: Sequence[str | int] = ()
    everyone: bool = False

    def __post_init__(self) -> None:
        users = _ids("users", self.users, MAX_USERS, TOO_MANY_USERS, numeric=False)
        parties = _ids("parties", self.parties, MAX_PARTIES, TOO_MANY_PARTIES, numeric=True)
        tags = _ids("tags", self.tags, MAX_TAGS, TOO_MANY_TAGS, numeric=True)
        everyone = self.everyone
        if not isinstance(everyone, bool):
            fail("recipients.everyone", everyone, f"is {type(everyone).__name__}", "true or false")
        if ALL in users:
            if len(users) > 1:
                fail("recipients.users", users, "mixes @all with userids", "@all alone")
            users, everyone = (), True
        if everyone and (users or parties or tags):
            fail(
                "recipients",
                None,
                "sets everyone (@all) together with users, parties or tags",
                "@all alone (WeCom would ignore the lists)",
            )
        if not (everyone or users or parties or tags):
            fail(
                "recipients",
                None,
                "has no users, parties or tags",
                "at least one recipient",
                code=NO_RECIPIENTS,
            )
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "parties", parties)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "everyone", everyone)

    @classmethod
    def parse(cls, users: str = "", parties: str = "", tags: str = "") -> Recipients:
        """From text such as ``"U1,U2"`` or ``"1|2"`` (the CLI's form); ``"@all"`` is everyone."""
        return cls(users=_split(users), parties=_split(parties), tags=_split(tags))

    @classmethod
    def of(cls, users: str | Sequence[str]) -> Recipients:
        """Users only: a text like ``"U1|U2"`` (parsed) or a list of userids; "@all" is everyone."""
        if isinstance(users, str):
            return cls.parse(users)
        return cls(users=users)

    @classmethod
    def all(cls) -> Recipients:
        """Everyone in the application's visible range (touser @all)."""
        return cls(everyone=True)

    def to_fields(self) -> dict[str, str]:
        """The touser/toparty/totag fields of message/send, "|"-joined without spaces."""
        if self.everyone:
            return {"touser": ALL}
        fields = {"touser": self.users, "toparty": self.parties, "totag": self.tags}
        return {key: "|".join(str(i) for i in ids) for key, ids in fields.items() if ids}

    def to_lists(self) -> dict[str, Any]:
        """The userids/partyids/tagids/atall fields of message/update_template_card (empty lists
        are left out; department and tag ids become integers, as in WeCom's example)."""
        lists = {
            "userids": list(self.users),
            "partyids": [int(p) for p in self.parties],
            "tagids": [int(t) for t in self.tags],
        }
        return {key: ids for key, ids in lists.items() if ids} | {"atall": int(self.everyone)}


def _split(text: str) -> tuple[str, ...]:
    """Comma- or bar-separated ids; spaces around separators and empty entries are parsing noise."""
    return tuple(part.strip() for part in _SEPARATORS.split(text) if part.strip())


def _ids(name: str, value: object, limit: int, code: int, *, numeric: bool) -> tuple[str, ...]:
    field = f"recipients.{name}"
    ids: dict[str, None] = {}
    for index, item in enumerate(sequence(field, value)):
        where = f"{field}[{index}]"
        if numeric and isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item:
            fail(where, item, "is not an id", "a non-empty string")
        if _BAD_ID_CHARS.search(item):
            fail(where, item, "contains '|' or whitespace", "ids without '|' or whitespace")
        if numeric and not (item.isascii() and item.isdigit()):
            fail(where, item, "is not a number", "a department or tag id (an integer)")
        ids.setdefault(item)
    if len(ids) > limit:
        fail(field, value, "", f"at most {limit} ids", code=code, subject=f"{len(ids)} ids")
    return tuple(ids)
