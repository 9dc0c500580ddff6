"""The reply rules of the long connection (§3.7, §3.8, §6): which req_id takes which response,
the 5-s and 24-h windows, 846605/846606, task_id uniqueness and what each reply showed.
Not locked itself: the hub calls it under its lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..cards import TASK_ID_USED
from ..errors import INVALID_PARAMETER, ApiError
from ..fields import JsonObject, string
from .bodies import (
    INVALID_MESSAGE_TYPE,
    MEDIA_TYPES,
    check_shown_body,
    check_stream,
    check_template_card,
    check_update,
    check_welcome,
)
from .conversations import Conversation, ConvKey
from .knobs import WsKnobs
from .records import WsCallback
from .uploads import Uploads

INVALID_REQ_ID = 846605
ALREADY_RESPONDED = 846606
REPLY_TYPES = frozenset({"template_card", "markdown"}) | MEDIA_TYPES
PUSH_TYPES = REPLY_TYPES


class Replies:
    """Callbacks by req_id, conversations, used task_ids and uploads of every bot."""

    def __init__(self, knobs: Callable[[], WsKnobs]) -> None:
        self.knobs = knobs
        self.callbacks: dict[str, WsCallback] = {}
        self.convs: dict[ConvKey, Conversation] = {}
        self.carded: set[str] = set()
        """Message req_ids whose stream_with_template_card card was sent."""
        self.task_ids: set[tuple[str, str]] = set()
        self.uploads = Uploads()
        self.current: ConvKey | None = None
        """The conversation the frame being handled is about (for its refusal), if known."""

    def bound(self, bot_id: str, req_id: str) -> WsCallback:
        callback = self.callbacks.get(req_id)
        if callback is None or callback.bot_id != bot_id:
            raise ApiError(INVALID_REQ_ID, "req_id is not a callback of this bot")
        if callback.chatid:
            self.current = (callback.bot_id, callback.chattype, callback.chatid)
        return callback

    def _responded(self, callback: WsCallback, *, closed: bool = False) -> None:
        self.callbacks[callback.req_id] = replace(
            callback, responses=callback.responses + 1, closed=callback.closed or closed
        )

    def _check_task_id(self, bot_id: str, card: JsonObject) -> str | None:
        task_id = card.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            return None
        if (bot_id, task_id) in self.task_ids:
            raise ApiError(TASK_ID_USED, f"task_id {task_id} was already used by this bot")
        return task_id

    def _card_task_id(self, bot_id: str, body: JsonObject, msgtype: str) -> str | None:
        if msgtype != "template_card":
            return None
        return self._check_task_id(bot_id, body["template_card"])

    def respond_msg(self, bot_id: str, req_id: str, body: JsonObject, now: float) -> None:
        callback = self.bound(bot_id, req_id)
        if callback.kind != "message":
            raise ApiError(INVALID_REQ_ID, f"a {callback.kind} req_id takes no aibot_respond_msg")
        if now >= callback.sent_at + self.knobs().message_reply_window_s:
            raise ApiError(INVALID_REQ_ID, "the message's reply window has passed")
        if callback.closed:
            raise ApiError(ALREADY_RESPONDED, "a template_card already answered this req_id")
        conv = self.conversation((bot_id, callback.chattype, callback.chatid))
        msgtype = body.get("msgtype")
        knobs = self.knobs()
        if msgtype == "stream":
            conv.stream_frame(req_id, check_stream(body, knobs), now, knobs)
            self._responded(callback)
            return
        if msgtype == "stream_with_template_card":
            if not knobs.accept_stream_with_card:
                raise ApiError(INVALID_MESSAGE_TYPE, "stream_with_template_card is not supported")
            frame, card = check_stream(body, knobs), check_template_card(body)
            if req_id in self.carded:
                raise ApiError(ALREADY_RESPONDED, "this message already got its template_card")
            task_id = self._check_task_id(bot_id, card)
            conv.stream_frame(req_id, frame, now, knobs, card=card)
            self._claim(bot_id, task_id)
            self.carded.add(req_id)
            self._responded(callback)
            return
        msgtype = check_shown_body(body, REPLY_TYPES, self._media_ok(bot_id, now))
        task_id = self._card_task_id(bot_id, body, msgtype)
        conv.check_rate(now, knobs)
        self._claim(bot_id, task_id)
        conv.count(now)
        conv.show("reply", msgtype, body, req_id, now)
        self._responded(callback, closed=msgtype == "template_card")

    def respond_welcome(self, bot_id: str, req_id: str, body: JsonObject, now: float) -> None:
        callback = self.bound(bot_id, req_id)
        if callback.kind != "enter_chat":
            raise ApiError(INVALID_REQ_ID, f"a {callback.kind} req_id takes no welcome")
        self._in_event_window(callback, now)
        msgtype = check_welcome(body)
        task_id = self._card_task_id(bot_id, body, msgtype)
        conv = self.conversation((bot_id, callback.chattype, callback.chatid))
        conv.check_rate(now, self.knobs())
        self._claim(bot_id, task_id)
        conv.count(now)
        conv.show("welcome", msgtype, body, req_id, now)
        self._responded(callback)

    def respond_update(self, bot_id: str, req_id: str, body: JsonObject, now: float) -> None:
        callback = self.bound(bot_id, req_id)
        if callback.kind != "template_card_event":
            raise ApiError(INVALID_REQ_ID, f"a {callback.kind} req_id takes no card update")
        self._in_event_window(callback, now)
        check_update(body, callback.task_id)
        conv = self.conversation((bot_id, callback.chattype, callback.chatid))
        conv.show("update", "update_template_card", body, req_id, now)
        self._responded(callback)

    def _in_event_window(self, callback: WsCallback, now: float) -> None:
        if now >= callback.sent_at + self.knobs().reply_window_s:
            window = self.knobs().reply_window_s
            raise ApiError(INVALID_REQ_ID, f"the event's req_id expired ({window:g} s)")
        if callback.responses:
            raise ApiError(ALREADY_RESPONDED, "this event was already answered")

    def push(self, bot_id: str, body: JsonObject, now: float) -> None:
        chatid = string(body, "chatid", required=INVALID_PARAMETER)
        chat_type = body.get("chat_type")
        if chat_type in (None, 0) and not isinstance(chat_type, bool):
            group = (bot_id, "group", chatid) in self.convs
            chattype = "group" if group else "single"
        elif chat_type in (1, 2) and not isinstance(chat_type, bool):
            chattype = "single" if chat_type == 1 else "group"
        else:
            raise ApiError(INVALID_PARAMETER, "chat_type must be 1 (single) or 2 (group)")
        self.current = (bot_id, chattype, chatid)
        msgtype = check_shown_body(body, PUSH_TYPES, self._media_ok(bot_id, now))
        task_id = self._card_task_id(bot_id, body, msgtype)
        conv = self.conversation(self.current)
        conv.check_rate(now, self.knobs())
        self._claim(bot_id, task_id)
        conv.count(now)
        conv.show("push", msgtype, body, None, now)

    def _claim(self, bot_id: str, task_id: str | None) -> None:
        if task_id is not None:
            self.task_ids.add((bot_id, task_id))

    def _media_ok(self, bot_id: str, now: float) -> Callable[[str], bool]:
        return lambda media_id: self.uploads.is_live(media_id, bot_id, now)

    def conversation(self, key: ConvKey) -> Conversation:
        conv = self.convs.get(key)
        if conv is None:
            conv = self.convs[key] = Conversation(key)
        return conv
