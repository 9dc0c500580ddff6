"""WeCom's side of AI bots' WebSocket long connection (wecom-aibot-protocol.md §3, §8.2).

AibotConnectionServer serves it on ws://127.0.0.1:PORT for an Emulator; the state (bots,
connections, req_id bindings, what every member saw, uploads) lives in the Emulator's
AibotWsHub (`emulator.aibot_ws`), readable from Python and the control API.
"""

from .callbacks import WsCallbacks, media_key, ws_media
from .hub import DEFAULT_BOT_ID, DEFAULT_BOT_SECRET, AibotWsHub, NotConnected
from .knobs import WsKnobs
from .records import (
    WsCallback,
    WsConnection,
    WsConversation,
    WsEviction,
    WsFrame,
    WsMedia,
    WsRefusal,
    WsShown,
    WsStream,
)
from .server import AibotConnectionServer

__all__ = [
    "DEFAULT_BOT_ID",
    "DEFAULT_BOT_SECRET",
    "AibotConnectionServer",
    "AibotWsHub",
    "NotConnected",
    "WsCallback",
    "WsCallbacks",
    "WsConnection",
    "WsConversation",
    "WsEviction",
    "WsFrame",
    "WsKnobs",
    "WsMedia",
    "WsRefusal",
    "WsShown",
    "WsStream",
    "media_key",
    "ws_media",
]
