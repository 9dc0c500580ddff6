"""Media a member sends an AI bot: downloaded from its URL (valid 5 minutes) and decrypted.

The bytes at the URL are the file encrypted with the bot's EncodingAESKey: AES-256-CBC, the IV
the key's first 16 bytes, PKCS#7 padding to 32 bytes, and no other framing.
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from Crypto.Cipher import AES

from callback.errors import BadRequest, WecomError
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


def downloader(
    encoding_aes_key: str, session: requests.Session | None = None, timeout: float = 30.0
) -> Callable[[str], bytes]:
    """`ctx.download` for a bot: fetch a media URL and decrypt it with the bot's key."""
    key = aes_key(encoding_aes_key)
    http = session or requests.Session()

    def download(url: str) -> bytes:
        try:
            with http.get(url, timeout=timeout, stream=True) as response:
                if response.status_code != 200:
                    raise WecomError(
                        f"media download: HTTP {response.status_code} (the URL is valid for 5 "
                        "minutes after the message)"
                    )
                data = b""
                for chunk in response.iter_content(1 << 16):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise WecomError("media download: over WeCom's 100 MB limit")
        except requests.RequestException as exc:
            raise WecomError(f"media download failed ({type(exc).__name__})") from exc
        return decrypt(data, key)

    return download
