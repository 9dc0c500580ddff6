"""WeCom error codes the emulator answers with, and the WeCom-style errmsg text around them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MORE_INFO_URL = "https://open.work.weixin.qq.com/devtool/query?e="

SYSTEM_BUSY = -1
INVALID_PARAMETER = 40058
CONTENT_TOO_LONG = 45002

ERRMSG: Mapping[int, str] = {
    -1: "system busy",
    40001: "invalid credential",
    40004: "invalid media type",
    40006: "invalid media size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40031: "invalid user list",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    40074: "news message not support safe",
    40091: "secret is invalid",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41005: "media data missing",
    41011: "agentid missing",
    41016: "title missing",
    41033: "description missing",
    42001: "access_token expired",
    42015: "update app is not the send app",
    42052: "msgid expired",
    44004: "empty content",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "api freq out of limit",
    45032: "author size out of limit",
    48002: "api forbidden",
    60140: "invalid response_code",
    81013: "user & party & tag all invalid",
    82001: "touser & toparty & totag all empty",
    82002: "party list size exceed limit",
    82003: "tag list size exceed limit",
    90200: "miniprogram appid missing",
    90201: "miniprogram content_item size exceed limit",
    90202: "miniprogram content_item key invalid",
    90203: "miniprogram content_item value invalid",
    90204: "miniprogram page invalid",
    90206: "miniprogram not linked to corp",
    90207: "invalid miniprogram appid",
    90208: "miniprogram appid mismatch",
    93000: "invalid webhook url",
    846605: "invalid req_id",
    846606: "request already responded, cannot respond again",
    846607: "message frequency out of limit",
    846608: "stream message update expired",
    853000: "invalid bot_id or secret",
}
"""Base errmsg per errcode; template_card codes 42027-42051 fall back to a generic text."""


class ApiError(Exception):
    """A WeCom error answer: its errcode, a human detail and extra response fields."""

    def __init__(self, errcode: int, detail: str = "", extra: Mapping[str, Any] | None = None):
        super().__init__(f"{errcode}: {detail}")
        self.errcode = errcode
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra or {})


def base_errmsg(errcode: int) -> str:
    """The short errmsg WeCom uses for errcode."""
    if 42027 <= errcode <= 42051:
        return "invalid template_card parameter"
    return ERRMSG.get(errcode, "invalid Request Parameter")


def errmsg(errcode: int, detail: str, *, hint: str, ip: str) -> str:
    """Format errmsg as WeCom does: text, hint, caller ip and the devtool link."""
    text = f"{base_errmsg(errcode)}: {detail}" if detail else base_errmsg(errcode)
    return f"{text}, hint: [{hint}], from ip: {ip}, more info at {MORE_INFO_URL}{errcode}"


def error_body(error: ApiError, *, hint: str, ip: str) -> dict[str, Any]:
    """The JSON answer for error: errcode, errmsg and any extra fields."""
    body: dict[str, Any] = {
        "errcode": error.errcode,
        "errmsg": errmsg(error.errcode, error.detail, hint=hint, ip=ip),
    }
    body.update(error.extra)
    return body
