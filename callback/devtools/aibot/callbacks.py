"""AI-bot callback plaintexts as WeCom builds them: messages §2.5, events §2.6, refreshes §2.7.

Keys come in the order of the notes' examples; every callback gets a fresh 32-hex msgid unless
one is given. Messages and template_card_event carry a response_url when a base is configured.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Fields = dict[str, Any]
DEFAULT_USER = "zhangsan"
DEFAULT_CHATID = "wrS7aGNQAApqNLsMLS_7RurTthP1vi5A"
"""A group chatid of the live format (§1)."""


@dataclass(frozen=True)
class ResponseGrant:
    """A response_url put into a callback: its code and the chat it answers into (§2.9)."""

    response_code: str
    chattype: str
    msgid: str
    userid: str
    chatid: str | None


Register = Callable[[ResponseGrant], None]


def new_msgid() -> str:
    """A msgid of the live format: 32 hex characters (§1)."""
    return secrets.token_hex(16)


def quote(msgtype: str, value: str | Sequence[tuple[str, str]]) -> Fields:
    """A quote (§2.5): text/voice take the content, image/file/video a url, mixed its parts."""
    if msgtype == "mixed":
        if isinstance(value, str):
            raise TypeError("a mixed quote takes (msgtype, value) parts")
        return {"msgtype": "mixed", "mixed": {"msg_item": mixed_items(value)}}
    if not isinstance(value, str):
        raise TypeError(f"a {msgtype} quote takes a string")
    key = "content" if msgtype in ("text", "voice") else "url"
    if msgtype not in ("text", "voice", "image", "file", "video"):
        raise ValueError(f"{msgtype} cannot be quoted")
    return {"msgtype": msgtype, msgtype: {key: value}}


def mixed_items(parts: Sequence[tuple[str, str]]) -> list[Fields]:
    """msg_item of a mixed message: ("text", content) and ("image", url) parts, in order."""
    items: list[Fields] = []
    for kind, value in parts:
        if kind not in ("text", "image"):
            raise ValueError(f"a mixed message holds text and image parts, not {kind}")
        items.append({"msgtype": kind, kind: {"content" if kind == "text" else "url": value}})
    return items


class Callbacks:
    """Builds one bot's callback plaintexts (what WeCom encrypts)."""

    def __init__(
        self,
        bot_id: str,
        *,
        user: str = DEFAULT_USER,
        response_url_base: str | None = None,
        register: Register | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_id = bot_id
        self.user = user
        self.response_url_base = (
            None if response_url_base is None else response_url_base.rstrip("/")
        )
        self._register = register
        self.clock = clock

    def response_url(self, chattype: str, msgid: str, userid: str, chatid: str | None) -> str:
        """A fresh response_url under the base, registered as issued for this chat."""
        if self.response_url_base is None:
            raise ValueError("no response_url_base configured")
        grant = ResponseGrant(secrets.token_urlsafe(24), chattype, msgid, userid, chatid)
        if self._register is not None:
            self._register(grant)
        return (
            f"{self.response_url_base}/cgi-bin/aibot/response?response_code={grant.response_code}"
        )

    def _head(
        self, msgid: str | None, chatid: str | None, user: str | None, *, event: bool = False
    ) -> tuple[Fields, str, str]:
        msgid = msgid or new_msgid()
        fields: Fields = {"msgid": msgid}
        if event:
            fields["create_time"] = int(self.clock())
        fields["aibotid"] = self.bot_id
        if chatid is not None:
            fields["chatid"] = chatid
        fields["chattype"] = "single" if chatid is None else "group"
        return fields, msgid, user or self.user

    def _with_url(
        self, fields: Fields, userid: str, response_url: str | None, chatid: str | None
    ) -> None:
        if response_url is None and self.response_url_base is not None:
            response_url = self.response_url(fields["chattype"], fields["msgid"], userid, chatid)
        if response_url is not None:
            fields["response_url"] = response_url

    def message(
        self,
        msgtype: str,
        body: Mapping[str, Any],
        *,
        chatid: str | None = None,
        user: str | None = None,
        msgid: str | None = None,
        quote: Mapping[str, Any] | None = None,
        response_url: str | None = None,
    ) -> Fields:
        """A message callback: chatid makes it a group message; response_url overrides the base."""
        fields, _, userid = self._head(msgid, chatid, user)
        fields["from"] = {"userid": userid}
        self._with_url(fields, userid, response_url, chatid)
        fields["msgtype"] = msgtype
        fields[msgtype] = dict(body)
        if quote is not None:
            fields["quote"] = dict(quote)
        return fields

    def text(
        self,
        content: str,
        *,
        chatid: str | None = None,
        mention: str | None = None,
        user: str | None = None,
        msgid: str | None = None,
        quote: Mapping[str, Any] | None = None,
        response_url: str | None = None,
    ) -> Fields:
        """A text message; mention puts "@mention " before the content (a group @bot)."""
        if mention is not None:
            content = f"@{mention} {content}"
        return self.message(
            "text",
            {"content": content},
            chatid=chatid,
            user=user,
            msgid=msgid,
            quote=quote,
            response_url=response_url,
        )

    def group_text(
        self,
        content: str,
        *,
        chatid: str = DEFAULT_CHATID,
        mention: str = "RobotA",
        mention_at_end: bool = False,
        **common: Any,
    ) -> Fields:
        """A group @bot message; the mention stays in text.content, first or last (§2.5)."""
        if mention_at_end:
            return self.text(f"{content}@{mention} ", chatid=chatid, **common)
        return self.text(content, chatid=chatid, mention=mention, **common)

    def image(self, url: str, **common: Any) -> Fields:
        """An image (single chat only); url serves bytes encrypted with the bot's key."""
        return self.message("image", {"url": url}, **common)

    def mixed(
        self, parts: Sequence[tuple[str, str]], *, chatid: str | None = None, **common: Any
    ) -> Fields:
        """A mixed message of ("text", content) and ("image", url) parts."""
        return self.message("mixed", {"msg_item": mixed_items(parts)}, chatid=chatid, **common)

    def voice(self, content: str, **common: Any) -> Fields:
        """A voice message (single chat only): only WeCom's transcription arrives."""
        return self.message("voice", {"content": content}, **common)

    def file(self, url: str, **common: Any) -> Fields:
        """A file (single chat only)."""
        return self.message("file", {"url": url}, **common)

    def video(self, url: str, **common: Any) -> Fields:
        """A video (single chat only)."""
        return self.message("video", {"url": url}, **common)

    def refresh(
        self, message: Mapping[str, Any], stream_id: str, *, msgid: str | None = None
    ) -> Fields:
        """A stream refresh for message's stream: its chat, no response_url (§2.7)."""
        fields: Fields = {"msgid": msgid or new_msgid(), "aibotid": self.bot_id}
        if "chatid" in message:
            fields["chatid"] = message["chatid"]
        fields["chattype"] = message.get("chattype", "single")
        fields["from"] = dict(message.get("from") or {"userid": self.user})
        fields["msgtype"] = "stream"
        fields["stream"] = {"id": stream_id}
        return fields

    def _event(
        self,
        name: str,
        body: Mapping[str, Any] | None,
        *,
        chatid: str | None,
        user: str | None,
        msgid: str | None,
        corp_id: str | None,
        with_chat: bool = True,
        response_url: str | None = None,
        wants_url: bool = False,
    ) -> Fields:
        fields, _, userid = self._head(msgid, chatid, user, event=True)
        if not with_chat:
            fields.pop("chattype")
        sender = {"userid": userid} if corp_id is None else {"corpid": corp_id, "userid": userid}
        fields["from"] = sender
        if wants_url:
            self._with_url(fields, userid, response_url, chatid)
        fields["msgtype"] = "event"
        event: Fields = {"eventtype": name}
        if body is not None:
            event[name] = dict(body)
        fields["event"] = event
        return fields

    def enter_chat_event(
        self, *, user: str | None = None, msgid: str | None = None, corp_id: str | None = None
    ) -> Fields:
        """A user's first entry of the day into the single chat: no chatid, no chattype."""
        return self._event(
            "enter_chat",
            None,
            chatid=None,
            user=user,
            msgid=msgid,
            corp_id=corp_id,
            with_chat=False,
        )

    def template_card_event(
        self,
        task_id: str,
        event_key: str,
        *,
        card_type: str = "button_interaction",
        selected: Mapping[str, Sequence[str]] | None = None,
        chatid: str | None = None,
        user: str | None = None,
        msgid: str | None = None,
        corp_id: str | None = None,
        response_url: str | None = None,
    ) -> Fields:
        """A card click/submit; selected maps question_key to chosen option ids (§2.6)."""
        body: Fields = {"card_type": card_type, "event_key": event_key, "task_id": task_id}
        if selected:
            body["selected_items"] = {
                "selected_item": [
                    {"question_key": key, "option_ids": {"option_id": list(ids)}}
                    for key, ids in selected.items()
                ]
            }
        return self._event(
            "template_card_event",
            body,
            chatid=chatid,
            user=user,
            msgid=msgid,
            corp_id=corp_id,
            response_url=response_url,
            wants_url=True,
        )

    def feedback_event(
        self,
        feedback_id: str,
        *,
        rating: int = 1,
        content: str | None = None,
        reasons: Sequence[int] = (),
        chatid: str | None = None,
        user: str | None = None,
        msgid: str | None = None,
    ) -> Fields:
        """👍 (rating 1), 👎 (2, with content and reasons) or undo (3) on a reply's feedback.id."""
        body: Fields = {"id": feedback_id, "type": rating}
        if content is not None:
            body["content"] = content
        if reasons:
            body["inaccurate_reason_list"] = list(reasons)
        return self._event(
            "feedback_event", body, chatid=chatid, user=user, msgid=msgid, corp_id=None
        )
