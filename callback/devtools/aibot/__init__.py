"""WeCom's side of an AI bot (智能机器人) in HTTP-callback mode, for testing a bot server.

Built from the AI-bot protocol notes only: AibotSide sends encrypted callbacks and stream
refreshes and checks every passive reply; MediaHost serves encrypted media; the emulator
(callback.devtools.emulator) answers the response_url.
"""

from .callbacks import DEFAULT_CHATID, Callbacks, ResponseGrant, mixed_items, new_msgid, quote
from .conversation import Conversation, Ending, MemberView
from .crypto import AibotCrypto, CryptoError, aes_key, decrypt_media, encrypt_media, signature
from .envelope import Sealed, compact, open_reply, seal
from .exchange import Exchange, Verification
from .media import MEDIA_URL_TTL, MediaHost
from .side import AibotSide, Retry
from .violations import RULES, ProtocolViolation, Violation

__all__ = [
    "DEFAULT_CHATID",
    "MEDIA_URL_TTL",
    "RULES",
    "AibotCrypto",
    "AibotSide",
    "Callbacks",
    "Conversation",
    "CryptoError",
    "Ending",
    "Exchange",
    "MediaHost",
    "MemberView",
    "ProtocolViolation",
    "ResponseGrant",
    "Retry",
    "Sealed",
    "Verification",
    "Violation",
    "aes_key",
    "compact",
    "decrypt_media",
    "encrypt_media",
    "mixed_items",
    "new_msgid",
    "open_reply",
    "quote",
    "seal",
    "signature",
]
