"""Recipient parsing for message/send (touser/toparty/totag) and resolution against an app."""

from __future__ import annotations

from dataclasses import dataclass

from .apps import EmulatorApp
from .errors import INVALID_PARAMETER, ApiError
from .fields import JsonObject

ALL = "@all"
MAX_USERS = 1000
MAX_GROUPS = 100


@dataclass(frozen=True)
class RecipientSpec:
    """The recipients as requested: `|`-split ids, or everyone for touser "@all"."""

    users: tuple[str, ...]
    parties: tuple[str, ...]
    tags: tuple[str, ...]
    everyone: bool = False


@dataclass(frozen=True)
class Resolution:
    """Who gets a message and which requested ids were rejected (userids lowercased)."""

    users: tuple[str, ...]
    parties: tuple[str, ...]
    tags: tuple[str, ...]
    invalid_users: tuple[str, ...] = ()
    invalid_parties: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()
    unlicensed_users: tuple[str, ...] = ()

    def report(self) -> dict[str, str]:
        """The invalid*/unlicenseduser response fields, only those that are non-empty."""
        fields = {
            "invaliduser": self.invalid_users,
            "invalidparty": self.invalid_parties,
            "invalidtag": self.invalid_tags,
            "unlicenseduser": self.unlicensed_users,
        }
        return {name: "|".join(ids) for name, ids in fields.items() if ids}


def _split(body: JsonObject, key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, str):
        raise ApiError(INVALID_PARAMETER, f"{key} must be a string of ids joined by '|'")
    return tuple(dict.fromkeys(part for part in value.split("|") if part))


def parse_recipients(body: JsonObject) -> RecipientSpec:
    """Check touser/toparty/totag shapes and sizes (82001, 40031, 82002, 82003, 40058)."""
    users, parties, tags = _split(body, "touser"), _split(body, "toparty"), _split(body, "totag")
    if users == (ALL,):
        return RecipientSpec((), (), (), everyone=True)
    if not (users or parties or tags):
        raise ApiError(82001, "touser, toparty and totag are all empty")
    if len(users) > MAX_USERS:
        raise ApiError(40031, f"touser has {len(users)} userids, at most {MAX_USERS}")
    if len(parties) > MAX_GROUPS:
        raise ApiError(82002, f"toparty has {len(parties)} ids, at most {MAX_GROUPS}")
    if len(tags) > MAX_GROUPS:
        raise ApiError(82003, f"totag has {len(tags)} ids, at most {MAX_GROUPS}")
    return RecipientSpec(users, parties, tags)


def resolve(spec: RecipientSpec, app: EmulatorApp) -> Resolution:
    """Split the requested recipients into delivered and rejected ones; 81013 if none remain."""
    if spec.everyone:
        members = sorted({user.lower() for user in app.users}) if app.users is not None else [ALL]
        unlicensed = tuple(user for user in members if app.is_unlicensed(user))
        delivered = tuple(user for user in members if user not in unlicensed)
        resolution = Resolution(delivered, (), (), unlicensed_users=unlicensed)
    else:
        lowered = tuple(dict.fromkeys(user.lower() for user in spec.users))
        visible = [user for user in lowered if app.sees_user(user)]
        unlicensed = tuple(user for user in visible if app.is_unlicensed(user))
        resolution = Resolution(
            users=tuple(user for user in visible if user not in unlicensed),
            parties=tuple(party for party in spec.parties if app.sees_party(party)),
            tags=tuple(tag for tag in spec.tags if app.sees_tag(tag)),
            invalid_users=tuple(user for user in lowered if not app.sees_user(user)),
            invalid_parties=tuple(p for p in spec.parties if not app.sees_party(p)),
            invalid_tags=tuple(tag for tag in spec.tags if not app.sees_tag(tag)),
            unlicensed_users=unlicensed,
        )
    if not (resolution.users or resolution.parties or resolution.tags):
        raise ApiError(81013, "no valid recipient", extra=resolution.report())
    return resolution
