"""template_card rules for the interactive types: buttons, vote checkboxes and select lists."""

from __future__ import annotations

from callback.outbound.card_fields import JsonObject, block, blocks, key, string, unique
from callback.outbound.checks import fail, integer, url

BAD_BUTTON_TEXT = 42038
MAX_OPTION_ID_BYTES = 128
W = "template_card"


def check_buttons(card: JsonObject) -> None:
    """button_interaction: 1-6 buttons, and an optional button_selection."""
    buttons = blocks(card, "button_list", W, 1, 6)
    for index, button in enumerate(buttons):
        where = f"{W}.button_list[{index}]"
        string(button, "text", where, required=True, max_chars=10, code=BAD_BUTTON_TEXT)
        if "style" in button:
            integer(f"{where}.style", button["style"], range(1, 5))
        if integer(f"{where}.type", button.get("type", 0), range(2)) == 1:
            url(f"{where}.url", button.get("url", ""), required=True)
        else:
            key(button, "key", where)
    unique([b["key"] for b in buttons if not b.get("type")], f"{W}.button_list[].key")
    if (selection := block(card, "button_selection", W)) is not None:
        _question(selection, f"{W}.button_selection", 10)


def check_vote(card: JsonObject) -> None:
    """vote_interaction: a checkbox of 1-20 options and a submit_button."""
    checkbox = block(card, "checkbox", W, required=True) or {}
    options = _question(checkbox, f"{W}.checkbox", 20)
    single = integer(f"{W}.checkbox.mode", checkbox.get("mode", 0), range(2)) == 0
    checked = 0
    for index, option in enumerate(options):
        value = option.get("is_checked", False)
        if not isinstance(value, bool):
            where = f"{W}.checkbox.option_list[{index}].is_checked"
            fail(where, value, f"is {type(value).__name__}", "true or false")
        checked += value
    if single and checked > 1:
        fail(f"{W}.checkbox.option_list", None, f"has {checked} checked", "at most 1 (mode 0)")
    _submit_button(card)


def check_multiple(card: JsonObject) -> None:
    """multiple_interaction: 1-3 selectors of 1-10 options each, and a submit_button."""
    selects = blocks(card, "select_list", W, 1, 3)
    for index, select in enumerate(selects):
        _question(select, f"{W}.select_list[{index}]", 10)
    unique([s["question_key"] for s in selects], f"{W}.select_list[].question_key")
    _submit_button(card)


def _question(part: JsonObject, where: str, max_options: int) -> tuple[JsonObject, ...]:
    """A question_key, an optional title and selected_id, and 1..max_options unique options."""
    key(part, "question_key", where)
    string(part, "title", where)
    options = blocks(part, "option_list", where, 1, max_options)
    for index, option in enumerate(options):
        at = f"{where}.option_list[{index}]"
        string(option, "id", at, required=True, max_bytes=MAX_OPTION_ID_BYTES)
        string(option, "text", at, required=True)
    ids = [option["id"] for option in options]
    unique(ids, f"{where}.option_list[].id")
    selected = string(part, "selected_id", where)
    if selected and selected not in ids:
        fail(f"{where}.selected_id", selected, "is not an option id", "one of the option ids")
    return options


def _submit_button(card: JsonObject) -> None:
    button = block(card, "submit_button", W, required=True) or {}
    string(button, "text", f"{W}.submit_button", max_chars=10, code=BAD_BUTTON_TEXT)
    key(button, "key", f"{W}.submit_button")
