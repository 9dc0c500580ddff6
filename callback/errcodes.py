"""WeCom API errcodes: which are transient, which mean a bad token, and hints in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: Retry with backoff: system busy, frequency and concurrency limits.
TRANSIENT = frozenset({-1, 45009, 45033})
#: The access token was rejected: drop it (if still cached), fetch once, replay once.
TOKEN_REJECTED = frozenset({40014, 42001})
#: gettoken refused the credentials: a configuration error, never retried.
BAD_CREDENTIALS = frozenset({40001, 40013, 40091, 41002, 41004, 45031})

HINTS: Mapping[int, str] = MappingProxyType(
    {
        -1: "WeCom is busy; retried with backoff",
        40001: "wrong secret: check apps.NAME.secret (the app's Secret in 应用管理; "
        "it changes when reset) and that the app is enabled",
        40013: "wrong corp id: check apps.NAME.corp_id (我的企业 → 企业信息 → 企业ID)",
        40014: "access token invalid; dropped and fetched again",
        40056: "wrong agentid: check apps.NAME.agent_id",
        40091: "secret is invalid (another corp's secret?): check apps.NAME.secret",
        41001: "access token missing from the request",
        42001: "access token expired; fetched again",
        44004: "text content is empty",
        45002: "content too large",
        45009: "API frequency limit hit; retried with backoff. A wrong secret repeated many "
        "times blocks the server's IP for an hour",
        45033: "too many concurrent calls; retried with backoff",
        48002: "this API is not allowed for this app; a miniprogram_notice must be sent with the "
        "mini-program application's secret, not a normal app's",
        60020: "this server's IP is not in the app's trusted IPs "
        "(应用管理 → the app → 企业可信IP); add it and wait about a minute",
        60140: "response_code invalid, already used or older than 72 h",
        81013: "every recipient is invalid or outside the app's visible range (可见范围)",
        82001: "no recipient given",
        42015: "the card must be updated by the app that sent it",
        42052: "recall works only within 24 h of sending",
        90200: "miniprogram_notice: appid missing",
        90201: "miniprogram_notice: more than 10 content items",
        90202: "miniprogram_notice: an item key is empty or over 10 characters",
        90203: "miniprogram_notice: an item value is empty or over 30 characters",
        90204: "miniprogram_notice: the page is invalid",
        90205: "miniprogram_notice: rejected by WeCom (90205)",
        90206: "the mini program is not linked to this corp (应用管理 → 小程序 → 关联)",
        90207: "invalid mini-program appid",
        90208: "the appid does not match the mini program linked to this app",
    }
)


def hint(errcode: int) -> str:
    """Plain words for an errcode, or a pointer to WeCom's lookup page."""
    return HINTS.get(errcode, f"see https://open.work.weixin.qq.com/devtool/query?e={errcode}")
