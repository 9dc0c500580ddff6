"""message/send body checks: the envelope and each msgtype's payload, raising WeCom errcodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .apps import EmulatorApp
from .cards import check_card
from .errors import INVALID_PARAMETER, ApiError
from .fields import JsonObject, flag, integer, mapping, objects, string
from .recipients import RecipientSpec, parse_recipients

MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"}
    | {"miniprogram_notice", "template_card"}
)
DEFAULT_DUPLICATE_INTERVAL = 1800
MAX_DUPLICATE_INTERVAL = 14400
MAX_ARTICLES = 8
TITLE_CHARS = range(4, 13)
"""miniprogram_notice title/description length in characters (UNCONFIRMED: chars vs bytes)."""


@dataclass(frozen=True)
class SendContext:
    """What the checks need to know about the sending app and its corp."""

    app: EmulatorApp
    corp_appids: frozenset[str]
    media_ok: Callable[[str], bool]


@dataclass(frozen=True)
class Envelope:
    """A checked message/send request; duplicate_interval is None when the check is off."""

    msgtype: str
    recipients: RecipientSpec
    duplicate_interval: int | None


def check_send(body: JsonObject, ctx: SendContext) -> Envelope:
    """Check a message/send body the way WeCom does; raises ApiError."""
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str) or msgtype not in MSGTYPES:
        raise ApiError(40008, f"msgtype {msgtype!r} is not supported")
    if msgtype == "miniprogram_notice":
        if not ctx.app.is_miniprogram:
            raise ApiError(48002, "only a mini-program app may send miniprogram_notice")
    else:
        _check_agentid(body, ctx.app)
    recipients = parse_recipients(body)
    if msgtype == "miniprogram_notice" and recipients.everyone:
        raise ApiError(INVALID_PARAMETER, "miniprogram_notice does not support touser @all")
    safe = integer(body, "safe", default=0, allowed=(0, 1, 2))
    if safe == 2 and msgtype != "mpnews":
        raise ApiError(INVALID_PARAMETER, "safe=2 is only supported by mpnews")
    if safe and msgtype == "news":
        raise ApiError(40074, "news does not support safe")
    integer(body, "enable_id_trans", default=0, allowed=(0, 1))
    payload = mapping(body, msgtype) or {}
    _CHECKERS[msgtype](payload, ctx)
    return Envelope(msgtype, recipients, _duplicate_interval(body))


def check_message(body: JsonObject, ctx: SendContext) -> tuple[int, str]:
    """(errcode, detail) for a message/send body: (0, "ok") when WeCom would accept it."""
    try:
        check_send(body, ctx)
    except ApiError as error:
        return error.errcode, error.detail
    return 0, "ok"


def _check_agentid(body: JsonObject, app: EmulatorApp) -> None:
    if body.get("agentid") is None:
        raise ApiError(41011, "agentid is required")
    agentid = integer(body, "agentid", default=0)
    if agentid != app.agent_id:
        raise ApiError(40056, f"agentid {agentid} is not the app of this access_token")


def _duplicate_interval(body: JsonObject) -> int | None:
    if not integer(body, "enable_duplicate_check", default=0, allowed=(0, 1)):
        return None
    interval = integer(body, "duplicate_check_interval", default=DEFAULT_DUPLICATE_INTERVAL)
    if not 0 < interval <= MAX_DUPLICATE_INTERVAL:
        raise ApiError(
            INVALID_PARAMETER, f"duplicate_check_interval must be 1..{MAX_DUPLICATE_INTERVAL}"
        )
    return interval


def _content(payload: JsonObject, ctx: SendContext) -> None:
    string(payload, "content", required=44004, max_bytes=2048)


def _media(payload: JsonObject, ctx: SendContext, key: str = "media_id", where: str = "") -> None:
    media_id = string(payload, key, where=where, required=40007)
    if not ctx.media_ok(media_id):
        raise ApiError(40007, f"{media_id!r} is not a live media_id of this corp")


def _video(payload: JsonObject, ctx: SendContext) -> None:
    _media(payload, ctx)
    string(payload, "title")
    string(payload, "description")


def _textcard(payload: JsonObject, ctx: SendContext) -> None:
    string(payload, "title", required=41016, max_chars=128)
    string(payload, "description", required=41033, max_chars=512)
    url = string(payload, "url", required=INVALID_PARAMETER, max_bytes=2048)
    if not url.startswith(("http://", "https://")):
        raise ApiError(INVALID_PARAMETER, "url must start with http:// or https://")
    string(payload, "btntxt", max_chars=4)


def _news(payload: JsonObject, ctx: SendContext) -> None:
    articles = objects(payload, "articles", min_items=1, max_items=MAX_ARTICLES, too_many=45008)
    for index, article in enumerate(articles):
        where = f"articles[{index}]"
        string(article, "title", where=where, required=41016, max_bytes=128)
        string(article, "description", where=where, max_bytes=512)
        url = string(article, "url", where=where, max_bytes=2048)
        string(article, "picurl", where=where, max_bytes=2048)
        appid = string(article, "appid", where=where)
        pagepath = string(article, "pagepath", where=where, max_bytes=128)
        if bool(appid) != bool(pagepath):
            raise ApiError(INVALID_PARAMETER, f"{where}: appid and pagepath go together")
        if not (url or appid):
            raise ApiError(INVALID_PARAMETER, f"{where}: url or appid+pagepath is required")
        if appid and appid not in ctx.corp_appids:
            raise ApiError(90206, f"{where}: appid {appid} is not linked to the corp")


def _mpnews(payload: JsonObject, ctx: SendContext) -> None:
    articles = objects(payload, "articles", min_items=1, max_items=MAX_ARTICLES, too_many=45008)
    for index, article in enumerate(articles):
        where = f"articles[{index}]"
        string(article, "title", where=where, required=41016, max_bytes=128)
        _media(article, ctx, "thumb_media_id", where)
        string(article, "author", where=where, max_bytes=64, too_long=45032)
        string(article, "content", where=where, required=44004, max_bytes=666 * 1024)
        string(article, "content_source_url", where=where)
        string(article, "digest", where=where, max_bytes=512)


def _miniprogram_notice(payload: JsonObject, ctx: SendContext) -> None:
    appid = string(payload, "appid", required=90200, invalid=90207)
    if appid not in ctx.app.linked_appids:
        code = 90208 if appid in ctx.corp_appids else 90206
        raise ApiError(code, f"appid {appid} is not linked to this mini-program app")
    string(payload, "page", max_bytes=1024, too_long=90204, invalid=90204)
    for key, required in (("title", 41016), ("description", None)):
        text = string(payload, key, required=required)
        if text and len(text) not in TITLE_CHARS:
            raise ApiError(INVALID_PARAMETER, f"{key} must be 4-12 characters, got {len(text)}")
    flag(payload, "emphasis_first_item")
    items = objects(payload, "content_item")
    kept = [item for item in items if item.get("key") or item.get("value")]
    if len(kept) > 10:
        raise ApiError(90201, f"content_item has {len(kept)} entries, at most 10")
    for index, item in enumerate(kept):
        where = f"content_item[{index}]"
        string(
            item, "key", where=where, required=90202, max_chars=10, too_long=90202, invalid=90202
        )
        string(
            item, "value", where=where, required=90203, max_chars=30, too_long=90203, invalid=90203
        )


def _template_card(payload: JsonObject, ctx: SendContext) -> None:
    check_card(payload)


_CHECKERS: dict[str, Callable[[JsonObject, SendContext], None]] = {
    "text": _content,
    "markdown": _content,
    "image": _media,
    "voice": _media,
    "file": _media,
    "video": _video,
    "textcard": _textcard,
    "news": _news,
    "mpnews": _mpnews,
    "miniprogram_notice": _miniprogram_notice,
    "template_card": _template_card,
}
