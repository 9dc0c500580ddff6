"""AI-bot crypto as WeCom does it (§2.1): the JSON WXBizMsgCrypt envelope with receive id "".

Written from the protocol notes on its own (not callback.inbound.crypto), so the emulator can
catch a mistake the server's crypto shares with ours. Also the media cipher of §2.5 (no framing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass, field

from Crypto.Cipher import AES

BLOCK = 32
"""WeCom pads to 32-byte blocks: PKCS#7 pad values 1..32."""
_LENGTH = struct.Struct(">I")


class CryptoError(ValueError):
    """A ciphertext that does not decrypt to WeCom's layout."""


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (or an unpadded media aeskey)."""
    padded = encoding_aes_key + "=" * (-len(encoding_aes_key) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the AES key is not base64") from None
    if len(key) != 32:
        raise ValueError(f"the AES key decodes to {len(key)} bytes, not 32")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """sha1 hex of the four strings sorted and joined (§2.1)."""
    joined = "".join(sorted((token, timestamp, nonce, encrypted)))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - WeCom's scheme


def pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 (a whole block of 0x20 when already aligned)."""
    n = BLOCK - len(data) % BLOCK
    return data + bytes((n,)) * n


def unpad(data: bytes) -> bytes:
    """Undo pad(); CryptoError unless the pad is 1..32 bytes all equal to its length."""
    n = data[-1] if data else 0
    if not 1 <= n <= BLOCK or data[-n:] != bytes((n,)) * n:
        raise CryptoError(f"bad PKCS#7 padding (last byte {n})")
    return data[:-n]


def _cbc(key: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = AES.new(key, AES.MODE_CBC, key[:16])
    return bytes(cipher.encrypt(data) if encrypt else cipher.decrypt(data))


def encrypt_media(data: bytes, key: bytes) -> bytes:
    """A media download's bytes (§2.5): AES-256-CBC, IV = key[:16], PKCS#7 to 32, no framing."""
    return _cbc(key, pad(data), encrypt=True)


def decrypt_media(data: bytes, key: bytes) -> bytes:
    """Undo encrypt_media()."""
    if not data or len(data) % 16:
        raise CryptoError(f"media ciphertext length {len(data)} is not a multiple of 16")
    return unpad(_cbc(key, data, encrypt=False))


@dataclass(frozen=True)
class Opened:
    """A decrypted envelope: the message bytes and the receive id that trailed them."""

    message: bytes
    receive_id: bytes


@dataclass(frozen=True)
class AibotCrypto:
    """One bot's Token and EncodingAESKey; receive id "" as for enterprise-internal bots."""

    token: str
    key: bytes = field(repr=False)
    receive_id: str = ""

    @classmethod
    def create(cls, token: str, encoding_aes_key: str, receive_id: str = "") -> AibotCrypto:
        """From the admin-console values."""
        if len(encoding_aes_key) != 43:
            raise ValueError(f"EncodingAESKey has {len(encoding_aes_key)} characters, not 43")
        return cls(token, aes_key(encoding_aes_key), receive_id)

    def __repr__(self) -> str:  # never show the token or key
        return f"AibotCrypto(receive_id={self.receive_id!r})"

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """The msg_signature of these values."""
        return signature(self.token, timestamp, nonce, encrypted)

    def encrypt(self, message: bytes, random_prefix: bytes | None = None) -> str:
        """base64(AES-CBC(pad(random16 ‖ len ‖ message ‖ receive id))); random bytes by default."""
        prefix = os.urandom(16) if random_prefix is None else random_prefix
        if len(prefix) != 16:
            raise ValueError("the random prefix must be 16 bytes")
        raw = prefix + _LENGTH.pack(len(message)) + message + self.receive_id.encode()
        return base64.b64encode(_cbc(self.key, pad(raw), encrypt=True)).decode("ascii")

    def decrypt(self, encrypted: str) -> Opened:
        """Split a ciphertext into message and receive id; CryptoError if the layout is wrong."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise CryptoError(f"ciphertext length {len(data)} is not a multiple of 16")
        raw = unpad(_cbc(self.key, data, encrypt=False))
        if len(raw) < 16 + _LENGTH.size:
            raise CryptoError("plaintext too short for the random prefix and length")
        (length,) = _LENGTH.unpack_from(raw, 16)
        end = 16 + _LENGTH.size + length
        if end > len(raw):
            raise CryptoError(f"length field {length} exceeds the plaintext")
        return Opened(raw[16 + _LENGTH.size : end], raw[end:])
