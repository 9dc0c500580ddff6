"""A WeCom API emulator (gettoken, message/*, media/upload, getcallbackip, the AI bot's
response_url and long connection, group robots) for tests and sandboxes.

It is written from the protocol notes, independent of the rest of `callback`, and strict the way
WeCom is, so a client that misnames a parameter or breaks a limit gets WeCom's errcode.
"""

from .aibot_responses import AibotResponseCode, AibotResponseRecord
from .aibot_ws import (
    DEFAULT_BOT_ID,
    DEFAULT_BOT_SECRET,
    AibotConnectionServer,
    AibotWsHub,
    NotConnected,
    WsCallbacks,
    WsKnobs,
)
from .apps import (
    DEFAULT_AGENT_ID,
    DEFAULT_APPS,
    DEFAULT_CORP_ID,
    DEFAULT_MINIPROGRAM_AGENT_ID,
    DEFAULT_MINIPROGRAM_APPID,
    DEFAULT_MINIPROGRAM_SECRET,
    DEFAULT_SECRET,
    INVALID_USER_PREFIX,
    UNLICENSED_USER_PREFIX,
    EmulatorApp,
)
from .cli import main
from .control import EmulatorControl
from .errors import ApiError
from .faults import CallMatch
from .holds import HoldEnd
from .media import MediaRecord
from .records import DuplicateRecord, MessageRecord, Stats, UnansweredCall, UpdateRecord
from .server import EmulatorServer, create_emulator_app
from .state import Emulator
from .validation import SendContext, check_message
from .webhooks import DEFAULT_WEBHOOK_KEY, WebhookMedia, WebhookRecord, WebhookRobot

__all__ = [
    "DEFAULT_AGENT_ID",
    "DEFAULT_APPS",
    "DEFAULT_BOT_ID",
    "DEFAULT_BOT_SECRET",
    "DEFAULT_CORP_ID",
    "DEFAULT_MINIPROGRAM_AGENT_ID",
    "DEFAULT_MINIPROGRAM_APPID",
    "DEFAULT_MINIPROGRAM_SECRET",
    "DEFAULT_SECRET",
    "DEFAULT_WEBHOOK_KEY",
    "INVALID_USER_PREFIX",
    "UNLICENSED_USER_PREFIX",
    "AibotConnectionServer",
    "AibotResponseCode",
    "AibotResponseRecord",
    "AibotWsHub",
    "ApiError",
    "CallMatch",
    "DuplicateRecord",
    "Emulator",
    "EmulatorApp",
    "EmulatorControl",
    "EmulatorServer",
    "HoldEnd",
    "MediaRecord",
    "MessageRecord",
    "NotConnected",
    "SendContext",
    "Stats",
    "UnansweredCall",
    "UpdateRecord",
    "WebhookMedia",
    "WebhookRecord",
    "WebhookRobot",
    "WsCallbacks",
    "WsKnobs",
    "check_message",
    "create_emulator_app",
    "main",
]
