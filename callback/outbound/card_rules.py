"""template_card validation: the common blocks and each card type's required parts (§2.2).

Only hard limits are enforced: required parts, list sizes, task_id, key/id byte limits and button
text (42038). WeCom's other text lengths are "建议" (recommended) display lengths and pass, and
blocks we have no rules for pass unchecked. The interactive types' rules are in card_interactions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from callback.outbound.card_fields import JsonObject, block, blocks, key, link, string, unique
from callback.outbound.card_interactions import check_buttons, check_multiple, check_vote
from callback.outbound.checks import fail, integer, url

NOTICE_TYPES = ("text_notice", "news_notice")
INTERACTIVE_TYPES = ("button_interaction", "vote_interaction", "multiple_interaction")
CARD_TYPES = NOTICE_TYPES + INTERACTIVE_TYPES
BAD_CARD_TYPE = 42031
MAX_TASK_ID_BYTES = 128
TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]+")
W = "template_card"


def check_card(card: object) -> str:
    """Validate a template_card object and return its card_type; raises ValidationError."""
    if not isinstance(card, Mapping):
        fail(W, card, f"is {type(card).__name__}", "a JSON object")
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        fail(f"{W}.card_type", card_type, "is unknown", " | ".join(CARD_TYPES), code=BAD_CARD_TYPE)
    _task_id(card, required=card_type in INTERACTIVE_TYPES or card.get("action_menu") is not None)
    if (source := block(card, "source", W)) is not None:
        url(f"{W}.source.icon_url", source.get("icon_url", ""))
        if "desc_color" in source:
            integer(f"{W}.source.desc_color", source["desc_color"], range(4))
    if (menu := block(card, "action_menu", W)) is not None:
        actions = blocks(menu, "action_list", f"{W}.action_menu", 1, 3)
        for index, action in enumerate(actions):
            string(action, "text", f"{W}.action_menu.action_list[{index}]", required=True)
            key(action, "key", f"{W}.action_menu.action_list[{index}]")
        unique([a["key"] for a in actions], f"{W}.action_menu.action_list[].key")
    if (main_title := block(card, "main_title", W)) is not None:
        string(main_title, "title", f"{W}.main_title")
        string(main_title, "desc", f"{W}.main_title")
    if (quote := block(card, "quote_area", W)) is not None:
        link(quote, f"{W}.quote_area", range(3))
    for index, item in enumerate(blocks(card, "horizontal_content_list", W, 0, 6)):
        where = f"{W}.horizontal_content_list[{index}]"
        string(item, "keyname", where, required=True)
        kind = integer(f"{where}.type", item.get("type", 0), range(4))
        needed = {1: "url", 2: "media_id", 3: "userid"}.get(kind)
        if needed:
            string(item, needed, where, required=True)
    for index, jump in enumerate(blocks(card, "jump_list", W, 0, 3)):
        string(jump, "title", f"{W}.jump_list[{index}]", required=True)
        link(jump, f"{W}.jump_list[{index}]", range(3))
    notice = card_type in NOTICE_TYPES
    if (card_action := block(card, "card_action", W, required=notice)) is not None:
        if notice and "type" not in card_action:
            fail(f"{W}.card_action.type", None, "is missing", "1 (url) or 2 (mini program)")
        link(card_action, f"{W}.card_action", range(1, 3) if notice else range(3))
    _CHECKS[card_type](card)
    return str(card_type)


def _text_notice(card: JsonObject) -> None:
    title = (card.get("main_title") or {}).get("title")
    if not (title or card.get("sub_title_text")):
        fail(f"{W}.main_title.title", title or "", "is empty", "it or sub_title_text")
    string(card, "sub_title_text", W)
    block(card, "emphasis_content", W)


def _news_notice(card: JsonObject) -> None:
    image = block(card, "card_image", W)
    area = block(card, "image_text_area", W)
    if (image is None) == (area is None):
        both = "sets both card_image and" if image is not None else "sets neither card_image nor"
        fail(f"{W}.card_image", None, f"{both} image_text_area", "exactly one of them")
    if image is not None:
        url(f"{W}.card_image.url", image.get("url", ""), required=True)
        ratio = image.get("aspect_ratio", 1.3)
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float)
            or not 1.3 <= ratio <= 2.25
        ):
            fail(f"{W}.card_image.aspect_ratio", ratio, "is out of range", "1.3 to 2.25")
    if area is not None:
        url(f"{W}.image_text_area.image_url", area.get("image_url", ""), required=True)
        link(area, f"{W}.image_text_area", range(3))
    for index, item in enumerate(blocks(card, "vertical_content_list", W, 0, 4)):
        string(item, "title", f"{W}.vertical_content_list[{index}]", required=True)


_CHECKS: dict[str, Callable[[JsonObject], None]] = {
    "text_notice": _text_notice,
    "news_notice": _news_notice,
    "button_interaction": check_buttons,
    "vote_interaction": check_vote,
    "multiple_interaction": check_multiple,
}


def _task_id(card: JsonObject, *, required: bool) -> None:
    why = " (interactive cards and cards with action_menu)" if required else ""
    task_id = string(card, "task_id", W, required=required, max_bytes=MAX_TASK_ID_BYTES, why=why)
    if task_id and not TASK_ID_RE.fullmatch(task_id):
        fail(f"{W}.task_id", task_id, "has other characters", "only [0-9A-Za-z_-@]")
