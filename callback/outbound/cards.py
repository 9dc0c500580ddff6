"""template_card messages: the card JSON as WeCom documents it, validated, plus common builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from callback.outbound.card_rules import INTERACTIVE_TYPES, check_card
from callback.outbound.messages import Message


@dataclass(frozen=True, slots=True)
class TemplateCard(Message):
    """A template_card (text_notice, news_notice, button/vote/multiple_interaction).

    The card is checked per card_type when built and kept as a private JSON copy, so later
    changes to the caller's dict cannot slip past validation.
    """

    card: Mapping[str, Any] = field(hash=False)
    msgtype: ClassVar[str] = "template_card"

    def __post_init__(self) -> None:
        check_card(self.card)
        object.__setattr__(self, "card", _json(self.card))

    @property
    def card_type(self) -> str:
        """text_notice, news_notice, or button/vote/multiple_interaction."""
        return str(self.card["card_type"])

    @property
    def task_id(self) -> str:
        """The card's task_id ("" when it has none)."""
        return str(self.card.get("task_id") or "")

    @property
    def returns_response_code(self) -> bool:
        """Whether message/send answers with a response_code for updating this card later
        (interactive types, and notice cards carrying an action_menu)."""
        return self.card_type in INTERACTIVE_TYPES or self.card.get("action_menu") is not None

    def payload(self) -> dict[str, Any]:
        card: dict[str, Any] = _json(self.card)
        return card

    @classmethod
    def text_notice(
        cls, title: str, url: str, *, desc: str = "", sub_title: str = "", task_id: str = ""
    ) -> TemplateCard:
        """A text notice card: a title (and optional desc/sub-title) that opens `url`."""
        card: dict[str, Any] = {"card_type": "text_notice", "main_title": _title(title, desc)}
        if sub_title:
            card["sub_title_text"] = sub_title
        card["card_action"] = {"type": 1, "url": url}
        return cls(card | ({"task_id": task_id} if task_id else {}))

    @classmethod
    def button_interaction(
        cls,
        task_id: str,
        title: str,
        buttons: Sequence[tuple[str, str]],
        *,
        desc: str = "",
        sub_title: str = "",
    ) -> TemplateCard:
        """A card with up to 6 callback buttons given as (text, key) pairs."""
        card: dict[str, Any] = {
            "card_type": "button_interaction",
            "task_id": task_id,
            "main_title": _title(title, desc),
        }
        if sub_title:
            card["sub_title_text"] = sub_title
        card["button_list"] = [{"text": text, "key": key} for text, key in buttons]
        return cls(card)

    @classmethod
    def vote_interaction(
        cls,
        task_id: str,
        title: str,
        question_key: str,
        options: Sequence[tuple[str, str]],
        *,
        submit_key: str,
        multi: bool = False,
        desc: str = "",
        submit_text: str = "提交",
    ) -> TemplateCard:
        """A vote card: (id, text) options, single choice unless `multi`, and a submit button."""
        return cls(
            {
                "card_type": "vote_interaction",
                "task_id": task_id,
                "main_title": _title(title, desc),
                "checkbox": {
                    "question_key": question_key,
                    "option_list": [{"id": oid, "text": text} for oid, text in options],
                    "mode": int(multi),
                },
                "submit_button": {"text": submit_text, "key": submit_key},
            }
        )


def _title(title: str, desc: str) -> dict[str, str]:
    return {"title": title} | ({"desc": desc} if desc else {})


def _json(value: Any) -> Any:
    """A deep, plain copy: mappings become dicts, lists and tuples become lists."""
    if isinstance(value, Mapping):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return value
