"""Outbound messages for the WeCom send API, validated against WeCom's limits before any request.

Values are frozen dataclasses that check themselves when built and raise
`callback.errors.ValidationError` naming the field, the value and the limit::

    notice = MiniProgramNotice("wx123", "会议室预订成功", items=[("会议室", "402")])
    body = build_send_body(notice, Recipients.parse("zhangsan|lisi"), agent_id=None)
"""

from __future__ import annotations

from callback.errors import ValidationError
from callback.outbound.articles import MpNews, MpNewsArticle, News, NewsArticle
from callback.outbound.bodies import (
    Recall,
    UpdateTemplateCard,
    build_send_bodies,
    build_send_body,
)
from callback.outbound.cards import TemplateCard
from callback.outbound.media import File, Image, Video, Voice
from callback.outbound.messages import TEXT_LIMIT_BYTES, Markdown, Message, Text, TextCard
from callback.outbound.notice import MiniProgramNotice, NoticeItem
from callback.outbound.recipients import Recipients

__all__ = [
    "TEXT_LIMIT_BYTES",
    "File",
    "Image",
    "Markdown",
    "Message",
    "MiniProgramNotice",
    "MpNews",
    "MpNewsArticle",
    "News",
    "NewsArticle",
    "NoticeItem",
    "Recall",
    "Recipients",
    "TemplateCard",
    "Text",
    "TextCard",
    "UpdateTemplateCard",
    "ValidationError",
    "Video",
    "Voice",
    "build_send_bodies",
    "build_send_body",
]
