"""template_card checks: card types, task_id and field rules, each mapped to a 42027-42051 errcode.

Only 42031 (card_type) and 42038 (button text) are confirmed by the notes; the other codes of
the family are the emulator's own, one per card block, so a failing field is easy to find
(button/vote/select codes 42037, 42038 and 42043-42046 live in card_interactions).
"""

from __future__ import annotations

import re

from .card_interactions import check_interaction, key_field, unique
from .errors import ApiError
from .fields import JsonObject, integer, mapping, nbytes, objects, string

SOURCE = 42027
ACTION_MENU = 42028
MAIN_TITLE = 42029
QUOTE_AREA = 42030
CARD_TYPE = 42031
TASK_ID = 42032
TASK_ID_USED = 42033
HORIZONTAL_CONTENT = 42034
JUMP_LIST = 42035
CARD_ACTION = 42036
EMPHASIS_CONTENT = 42039
TITLE_MISSING = 42040
NEWS_IMAGE = 42041
VERTICAL_CONTENT = 42042

NOTICE_TYPES = frozenset({"text_notice", "news_notice"})
INTERACTIVE_TYPES = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
CARD_TYPES = NOTICE_TYPES | INTERACTIVE_TYPES
TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]+")


def issues_response_code(card: JsonObject) -> bool:
    """Whether sending this card returns a response_code (interactive, or notice + action_menu)."""
    return card.get("card_type") in INTERACTIVE_TYPES or card.get("action_menu") is not None


def task_id_of(card: JsonObject) -> str:
    """The card's task_id, "" when it has none."""
    value = card.get("task_id")
    return value if isinstance(value, str) else ""


def check_card(card: JsonObject) -> str:
    """Check a template_card payload and return its card_type; raises ApiError."""
    card_type = card.get("card_type")
    if not isinstance(card_type, str) or card_type not in CARD_TYPES:
        raise ApiError(CARD_TYPE, f"card_type {card_type!r} is not supported")
    _task_id(card, required=card_type in INTERACTIVE_TYPES or "action_menu" in card)
    source = mapping(card, "source", invalid=SOURCE) or {}
    integer(source, "desc_color", where="source", default=0, allowed=range(4), invalid=SOURCE)
    _action_menu(card)
    main_title = mapping(card, "main_title", invalid=MAIN_TITLE) or {}
    title = string(main_title, "title", where="main_title", invalid=MAIN_TITLE)
    subtitle = string(card, "sub_title_text", invalid=TITLE_MISSING)
    _links(card, "quote_area", QUOTE_AREA, types=range(3), optional_type=True)
    _horizontal_content(card)
    for index, jump in enumerate(objects(card, "jump_list", max_items=3, invalid=JUMP_LIST)):
        string(jump, "title", where=f"jump_list[{index}]", required=JUMP_LIST, invalid=JUMP_LIST)
        _link(jump, f"jump_list[{index}]", JUMP_LIST, range(3))
    notice = card_type in NOTICE_TYPES
    if card.get("card_action") is not None or notice:
        _links(card, "card_action", CARD_ACTION, types=range(1, 3) if notice else range(3))
    if card_type == "text_notice":
        if not (title or subtitle):
            raise ApiError(TITLE_MISSING, "main_title.title or sub_title_text is required")
        mapping(card, "emphasis_content", invalid=EMPHASIS_CONTENT)
    elif card_type == "news_notice":
        _news_notice(card)
    else:
        check_interaction(card, card_type)
    return card_type


def _task_id(card: JsonObject, *, required: bool) -> None:
    task_id = string(card, "task_id", required=TASK_ID if required else None, invalid=TASK_ID)
    if task_id and (nbytes(task_id) > 128 or not TASK_ID_RE.fullmatch(task_id)):
        raise ApiError(TASK_ID, "task_id must be 1-128 bytes of [0-9A-Za-z_-@]")


def _action_menu(card: JsonObject) -> None:
    menu = mapping(card, "action_menu", invalid=ACTION_MENU)
    if menu is None:
        return
    actions = objects(menu, "action_list", min_items=1, max_items=3, invalid=ACTION_MENU)
    for index, action in enumerate(actions):
        where = f"action_menu.action_list[{index}]"
        string(action, "text", where=where, required=ACTION_MENU, invalid=ACTION_MENU)
        key_field(action, where, ACTION_MENU)
    unique([str(action.get("key")) for action in actions], "action_menu key", ACTION_MENU)


def _link(parent: JsonObject, where: str, code: int, types: range, default: int = 0) -> None:
    kind = integer(parent, "type", where=where, default=default, allowed=types, invalid=code)
    if kind == 1:
        string(parent, "url", where=where, required=code, invalid=code)
    elif kind == 2:
        string(parent, "appid", where=where, required=code, invalid=code)
        string(parent, "pagepath", where=where, invalid=code)


def _links(
    card: JsonObject, key: str, code: int, *, types: range, optional_type: bool = False
) -> None:
    block = mapping(card, key, required=None if optional_type else code, invalid=code)
    if block is not None:
        if not optional_type and block.get("type") is None:
            raise ApiError(code, f"{key}.type is required")
        _link(block, key, code, types)


def _horizontal_content(card: JsonObject) -> None:
    code = HORIZONTAL_CONTENT
    for index, item in enumerate(
        objects(card, "horizontal_content_list", max_items=6, invalid=code)
    ):
        where = f"horizontal_content_list[{index}]"
        string(item, "keyname", where=where, required=code, invalid=code)
        kind = integer(item, "type", where=where, default=0, allowed=range(4), invalid=code)
        needed = {1: "url", 2: "media_id", 3: "userid"}.get(kind)
        if needed:
            string(item, needed, where=where, required=code, invalid=code)


def _news_notice(card: JsonObject) -> None:
    image = mapping(card, "card_image", invalid=NEWS_IMAGE)
    area = mapping(card, "image_text_area", invalid=NEWS_IMAGE)
    if (image is None) == (area is None):
        raise ApiError(NEWS_IMAGE, "exactly one of card_image and image_text_area is required")
    if image is not None:
        string(image, "url", where="card_image", required=NEWS_IMAGE, invalid=NEWS_IMAGE)
        ratio = image.get("aspect_ratio", 1.3)
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float)
            or not 1.3 <= ratio <= 2.25
        ):
            raise ApiError(NEWS_IMAGE, "card_image.aspect_ratio must be 1.3-2.25")
    if area is not None:
        string(area, "image_url", where="image_text_area", required=NEWS_IMAGE, invalid=NEWS_IMAGE)
        _link(area, "image_text_area", NEWS_IMAGE, range(3))
    verticals = objects(card, "vertical_content_list", max_items=4, invalid=VERTICAL_CONTENT)
    for index, item in enumerate(verticals):
        where = f"vertical_content_list[{index}]"
        string(item, "title", where=where, required=VERTICAL_CONTENT, invalid=VERTICAL_CONTENT)
