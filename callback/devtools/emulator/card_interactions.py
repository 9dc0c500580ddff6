"""template_card checks for the interactive blocks: buttons, vote checkboxes and select lists."""

from __future__ import annotations

from .errors import ApiError
from .fields import JsonObject, integer, mapping, objects, string

BUTTON_LIST = 42037
BUTTON_TEXT = 42038
BUTTON_SELECTION = 42043
CHECKBOX = 42044
SUBMIT_BUTTON = 42045
SELECT_LIST = 42046
MAX_KEY_BYTES = 1024


def check_interaction(card: JsonObject, card_type: str) -> None:
    """Check the blocks of a button_interaction, vote_interaction or multiple_interaction card."""
    if card_type == "button_interaction":
        _buttons(card)
    elif card_type == "vote_interaction":
        checkbox = mapping(card, "checkbox", required=CHECKBOX, invalid=CHECKBOX) or {}
        _question(checkbox, "checkbox", CHECKBOX, max_options=20)
        integer(checkbox, "mode", where="checkbox", default=0, allowed=(0, 1), invalid=CHECKBOX)
        _submit_button(card)
    else:
        selects = objects(card, "select_list", min_items=1, max_items=3, invalid=SELECT_LIST)
        for index, select in enumerate(selects):
            _question(select, f"select_list[{index}]", SELECT_LIST, max_options=10)
        unique([str(s.get("question_key")) for s in selects], "question_key", SELECT_LIST)
        _submit_button(card)


def key_field(parent: JsonObject, where: str, code: int, key: str = "key") -> None:
    """A required callback key of at most 1024 bytes."""
    string(
        parent,
        key,
        where=where,
        required=code,
        max_bytes=MAX_KEY_BYTES,
        too_long=code,
        invalid=code,
    )


def unique(values: list[str], what: str, code: int) -> None:
    """Raise code when values repeat."""
    if len(set(values)) != len(values):
        raise ApiError(code, f"{what}s must be unique")


def _buttons(card: JsonObject) -> None:
    buttons = objects(card, "button_list", min_items=1, max_items=6, invalid=BUTTON_LIST)
    for index, button in enumerate(buttons):
        where = f"button_list[{index}]"
        string(button, "text", where=where, required=BUTTON_TEXT, invalid=BUTTON_TEXT)
        integer(button, "style", where=where, default=1, allowed=range(1, 5), invalid=BUTTON_LIST)
        if integer(button, "type", where=where, default=0, allowed=(0, 1), invalid=BUTTON_LIST):
            string(button, "url", where=where, required=BUTTON_LIST, invalid=BUTTON_LIST)
        else:
            key_field(button, where, BUTTON_LIST)
    unique([str(b.get("key")) for b in buttons if not b.get("type")], "button key", BUTTON_LIST)
    selection = mapping(card, "button_selection", invalid=BUTTON_SELECTION)
    if selection is not None:
        _question(selection, "button_selection", BUTTON_SELECTION, max_options=10)


def _question(block: JsonObject, where: str, code: int, *, max_options: int) -> None:
    key_field(block, where, code, "question_key")
    options = objects(
        block, "option_list", where=where, min_items=1, max_items=max_options, invalid=code
    )
    for index, option in enumerate(options):
        at = f"{where}.option_list[{index}]"
        string(option, "id", where=at, required=code, max_bytes=128, too_long=code, invalid=code)
        string(option, "text", where=at, required=code, invalid=code)
    unique([str(option.get("id")) for option in options], f"{where} option id", code)


def _submit_button(card: JsonObject) -> None:
    button = mapping(card, "submit_button", required=SUBMIT_BUTTON, invalid=SUBMIT_BUTTON) or {}
    string(button, "text", where="submit_button", invalid=SUBMIT_BUTTON)
    key_field(button, "submit_button", SUBMIT_BUTTON)
