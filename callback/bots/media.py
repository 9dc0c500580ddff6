"""Media a member sends an AI bot: downloaded from its URL (valid 5 minutes) and decrypted.

The bytes at the URL are the file encrypted with a 32-byte key: AES-256-CBC, the IV the key's
first 16 bytes, PKCS#7 padding to 32 bytes, and no other framing. In callback mode the key is
the bot's EncodingAESKey; over the long connection each URL comes with its own `aeskey`
(base64, often without its '=' padding).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import requests
from Crypto.Cipher import AES

from callback.errors import BadRequest, ConfigError, WecomError
from callback.inbound.crypto import aes_key

#: Files sent to a bot are at most 100 MB (WeCom's limit), so the download is capped there.
MAX_BYTES = 100 * 1024 * 1024 + 32


def decrypt(data: bytes, key: bytes) -> bytes:
    """The file inside `data` (see the module docstring)."""
    if not data or len(data) % 16:
        raise BadRequest(f"encrypted media of {len(data)} bytes is not whole AES blocks")
    plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(data)
    pad = plain[-1]
    if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
        raise BadRequest("encrypted media has bad padding (wrong EncodingAESKey?)")
    return plain[:-pad]


def url_key(aeskey: str) -> bytes:
    """The 32-byte key of one media URL of the long connection."""
    try:
        key = base64.b64decode(aeskey + "=" * (-len(aeskey) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("a media aeskey is not base64") from None
    if len(key) != 32:
        raise BadRequest(f"a media aeskey decodes to {len(key)} bytes, not 32")
    return key


def downloader(
    name: str,
    encoding_aes_key: str,
    session: requests.Session | None = None,
    timeout: float = 30.0,
) -> Callable[[str, str], bytes]:
    """`ctx.download` for bot `name`: fetch a media URL and decrypt it with the URL's own
    key when it has one, else with the bot's EncodingAESKey."""
    bot_key = aes_key(encoding_aes_key) if encoding_aes_key else None
    http = session or requests.Session()

    def download(url: str, aeskey: str = "") -> bytes:
        key = url_key(aeskey) if aeskey else bot_key
        if key is None:
            raise ConfigError(
                f"bots.{name}.encoding_aes_key: not set, and the media came without its own "
                "aeskey; set it from the bot's API settings in the WeCom admin console"
            )
        try:
            with http.get(url, timeout=timeout, stream=True) as response:
                if response.status_code != 200:
                    raise WecomError(
                        f"media download: HTTP {response.status_code} (the URL is valid for 5 "
                        "minutes after the message)"
                    )
                data = bytearray()  # grows in place: up to 100 MB, never copied per chunk
                for chunk in response.iter_content(1 << 16):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise WecomError("media download: over WeCom's 100 MB limit")
        except requests.RequestException as exc:
            raise WecomError(f"media download failed ({type(exc).__name__})") from exc
        return decrypt(bytes(data), key)

    return download
