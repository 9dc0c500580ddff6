"""Emulated WeCom apps: credentials, linked mini programs and the visible range of members."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

INVALID_USER_PREFIX = "invalid"
"""With an open visible range (users=None), userids starting with this are unknown members."""
UNLICENSED_USER_PREFIX = "unlicensed"
"""With an open visible range, userids starting with this are members without an API licence."""
INVALID_GROUP_IDS = frozenset({"404"})
"""With an open range, these department / tag ids don't exist (any other integer id does)."""
USERID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

DEFAULT_CORP_ID = "ww_emulator_corp"
DEFAULT_AGENT_ID = 1000002
DEFAULT_SECRET = "emulator-secret"  # noqa: S105 (a fake credential)
DEFAULT_MINIPROGRAM_AGENT_ID = 1000003
DEFAULT_MINIPROGRAM_SECRET = "emulator-miniprogram-secret"  # noqa: S105
DEFAULT_MINIPROGRAM_APPID = "wx_emulator_miniprogram"


@dataclass(frozen=True)
class EmulatorApp:
    """One self-built app; None for users/parties/tags means an open visible range."""

    corp_id: str
    agent_id: int
    secret: str
    is_miniprogram: bool = False
    linked_appids: tuple[str, ...] = ()
    users: frozenset[str] | None = None
    unlicensed_users: frozenset[str] = frozenset()
    parties: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.corp_id or not self.secret:
            raise ValueError("an app needs a corp_id and a secret")
        if isinstance(self.agent_id, bool) or not isinstance(self.agent_id, int):
            raise ValueError("agent_id must be an integer")
        if self.is_miniprogram and not self.linked_appids:
            raise ValueError("a mini-program app needs at least one linked appid")

    @property
    def key(self) -> str:
        """Stable id of the app inside the emulator: "corp_id/agent_id"."""
        return f"{self.corp_id}/{self.agent_id}"

    def sees_user(self, userid: str) -> bool:
        """Whether userid exists in the app's visible range (case-insensitive)."""
        lowered = userid.lower()
        if self.users is not None:
            return lowered in {user.lower() for user in self.users}
        return bool(USERID_RE.fullmatch(userid)) and not lowered.startswith(INVALID_USER_PREFIX)

    def is_unlicensed(self, userid: str) -> bool:
        """Whether a visible member lacks the basic API licence."""
        lowered = userid.lower()
        if lowered in {user.lower() for user in self.unlicensed_users}:
            return True
        return self.users is None and lowered.startswith(UNLICENSED_USER_PREFIX)

    def sees_party(self, party_id: str) -> bool:
        """Whether a department id is in the visible range."""
        return _sees_group(self.parties, party_id)

    def sees_tag(self, tag_id: str) -> bool:
        """Whether a tag id is in the visible range."""
        return _sees_group(self.tags, tag_id)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "name": self.name,
            "corp_id": self.corp_id,
            "agent_id": self.agent_id,
            "secret": self.secret,
            "is_miniprogram": self.is_miniprogram,
            "linked_appids": list(self.linked_appids),
            "users": None if self.users is None else sorted(self.users),
            "unlicensed_users": sorted(self.unlicensed_users),
            "parties": None if self.parties is None else sorted(self.parties),
            "tags": None if self.tags is None else sorted(self.tags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmulatorApp:
        """Build an app from its JSON form; raises ValueError/TypeError on bad input."""

        def names(key: str) -> frozenset[str] | None:
            value = data.get(key)
            return None if value is None else frozenset(_strings(key, value))

        return cls(
            corp_id=str(data.get("corp_id", DEFAULT_CORP_ID)),
            agent_id=data["agent_id"],
            secret=str(data["secret"]),
            is_miniprogram=bool(data.get("is_miniprogram", False)),
            linked_appids=tuple(_strings("linked_appids", data.get("linked_appids", []))),
            users=names("users"),
            unlicensed_users=names("unlicensed_users") or frozenset(),
            parties=names("parties"),
            tags=names("tags"),
            name=str(data.get("name", "")),
        )


def _strings(key: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list of strings")
    return [str(item) for item in value]


def check_new_app(apps: Iterable[EmulatorApp], app: EmulatorApp) -> None:
    """Raise ValueError if app's agent id or secret is already taken in its corp."""
    for other in apps:
        if other.corp_id == app.corp_id and app.agent_id == other.agent_id:
            raise ValueError(f"app {app.key} already exists")
        if other.corp_id == app.corp_id and app.secret == other.secret:
            raise ValueError(f"the secret of {app.key} is already used by {other.key}")


def _sees_group(visible: frozenset[str] | None, group_id: str) -> bool:
    if visible is not None:
        return group_id in visible
    return group_id.isdigit() and group_id not in INVALID_GROUP_IDS


DEFAULT_APPS = (
    EmulatorApp(DEFAULT_CORP_ID, DEFAULT_AGENT_ID, DEFAULT_SECRET, name="app"),
    EmulatorApp(
        DEFAULT_CORP_ID,
        DEFAULT_MINIPROGRAM_AGENT_ID,
        DEFAULT_MINIPROGRAM_SECRET,
        is_miniprogram=True,
        linked_appids=(DEFAULT_MINIPROGRAM_APPID,),
        name="miniprogram",
    ),
)
"""The apps an Emulator starts with unless told otherwise."""


def app_for_secret(
    apps: Iterable[EmulatorApp], corpid: str | None, corpsecret: str | None
) -> EmulatorApp:
    """The app gettoken issues a token for; raises 41002, 41004, 40013, 40091 or 40001."""
    if not corpid:
        raise ApiError(41002, "corpid is required")
    if not corpsecret:
        raise ApiError(41004, "corpsecret is required")
    apps = list(apps)
    if not any(app.corp_id == corpid for app in apps):
        raise ApiError(40013, f"corpid {corpid} is unknown")
    for app in apps:
        if app.corp_id == corpid and hmac.compare_digest(app.secret, corpsecret):
            return app
    if any(app.secret == corpsecret for app in apps):
        raise ApiError(40091, "corpsecret belongs to another corp")
    raise ApiError(40001, "corpsecret does not match any app of this corp")
