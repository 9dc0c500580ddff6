"""The message/update_template_card request: its targets and the replacement it asks for."""

from __future__ import annotations

from dataclasses import dataclass

from .cards import check_card
from .errors import INVALID_PARAMETER, ApiError
from .fields import JsonObject, integer, mapping, string

MAX_USERS = 1000
MAX_GROUPS = 100


@dataclass(frozen=True)
class CardUpdate:
    """A checked update: either replace_name (grey the button) or a whole new card."""

    response_code: str
    agentid: int
    userids: tuple[str, ...]
    partyids: tuple[int, ...]
    tagids: tuple[int, ...]
    atall: bool
    replace_name: str | None
    card: JsonObject | None


def _ids(body: JsonObject, key: str, limit: int, kind: type) -> tuple[str | int, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ApiError(INVALID_PARAMETER, f"{key} must be an array")
    if len(value) > limit:
        raise ApiError(INVALID_PARAMETER, f"{key} has {len(value)} entries, at most {limit}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, kind):
            raise ApiError(INVALID_PARAMETER, f"{key} entries must be {kind.__name__}")
    return tuple(value)


def parse_update(body: JsonObject) -> CardUpdate:
    """Check an update_template_card body; raises ApiError."""
    if body.get("agentid") is None:
        raise ApiError(41011, "agentid is required")
    agentid = integer(body, "agentid", default=0)
    response_code = string(body, "response_code", required=60140, invalid=60140)
    userids = tuple(str(user) for user in _ids(body, "userids", MAX_USERS, str))
    partyids = tuple(int(party) for party in _ids(body, "partyids", MAX_GROUPS, int))
    tagids = tuple(int(tag) for tag in _ids(body, "tagids", MAX_GROUPS, int))
    atall = bool(integer(body, "atall", default=0, allowed=(0, 1)))
    if not (atall or userids or partyids or tagids):
        raise ApiError(INVALID_PARAMETER, "give userids, partyids, tagids or atall=1")
    button = mapping(body, "button")
    card = mapping(body, "template_card")
    if (button is None) == (card is None):
        raise ApiError(INVALID_PARAMETER, "give exactly one of button and template_card")
    replace_name = None
    if button is not None:
        replace_name = string(button, "replace_name", where="button", required=INVALID_PARAMETER)
    if card is not None:
        check_card(card)
    return CardUpdate(response_code, agentid, userids, partyids, tagids, atall, replace_name, card)
