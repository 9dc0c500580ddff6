"""wecom-callback: WeCom callbacks verified, decrypted, parsed and routed to handlers."""

from callback.context import Context
from callback.inbound.replies import (
    Article,
    ImageReply,
    NewsReply,
    Reply,
    TextReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from callback.router import Router

__all__ = [
    "Article",
    "Context",
    "ImageReply",
    "NewsReply",
    "Reply",
    "Router",
    "TextReply",
    "UpdateButtonReply",
    "UpdateTemplateCardReply",
    "VideoReply",
    "VoiceReply",
]
