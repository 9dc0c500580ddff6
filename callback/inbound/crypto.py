"""WeCom's callback crypto (the WXBizMsgCrypt scheme): signatures and the AES envelope. Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from Crypto.Cipher import AES

from callback.errors import BadRequest, ConfigError, ReceiveIdError, SignatureError

BLOCK = 32  # WeCom pads to 32-byte blocks (PKCS#7 values 1..32), not AES's 16.
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_LENGTH = struct.Struct(">I")


def aes_key(encoding_aes_key: str) -> bytes:
    """Decode a 43-character EncodingAESKey into the 32-byte AES key."""
    if not _AES_KEY_RE.fullmatch(encoding_aes_key):
        raise ConfigError(
            f"EncodingAESKey must be exactly 43 letters or digits, got {len(encoding_aes_key)} "
            "characters; copy it again from the app's callback settings in the WeCom admin console"
        )
    return base64.b64decode(encoding_aes_key + "=")


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """SHA-1 over the four strings sorted and joined, as lowercase hex."""
    joined = "".join(sorted((token, timestamp, nonce, encrypted)))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - WeCom's scheme


def _random_prefix() -> bytes:
    """16 ASCII characters, as the official samples send. It only keeps equal messages from
    making equal ciphertexts (the IV is fixed), so the fast PRNG does: no system call per
    reply (the official sample uses Python's `random` too; CPython reseeds it after fork)."""
    return b"%016x" % random.getrandbits(64)


@dataclass(frozen=True)
class MsgCrypto:
    """One application's callback crypto: token, AES key and the receive id to expect."""

    token: str
    key: bytes
    receive_id: str
    random_prefix: Callable[[], bytes] = field(default=_random_prefix, repr=False, compare=False)
    #: A stateless AES block decryptor, made once: CBC decryption is ECB then an XOR with the
    #: previous ciphertext block (the IV for the first), so no cipher is built per message.
    _ecb: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ecb", AES.new(self.key, AES.MODE_ECB))

    @classmethod
    def create(cls, token: str, encoding_aes_key: str, receive_id: str) -> MsgCrypto:
        """Build from the admin-console values (token, EncodingAESKey) and the corp id."""
        return cls(token=token, key=aes_key(encoding_aes_key), receive_id=receive_id)

    def __repr__(self) -> str:  # never show the token or key
        return f"MsgCrypto(receive_id={self.receive_id!r})"

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """The msg_signature WeCom computes for these values."""
        return signature(self.token, timestamp, nonce, encrypted)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise SignatureError unless msg_signature matches (constant-time comparison)."""
        expected = self.sign(timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode()):
            raise SignatureError("msg_signature does not match (check the app's token)")

    def decrypt(self, encrypted: str) -> bytes:
        """Decrypt Encrypt/echostr into the message bytes, checking layout and receive id."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            hint = " (a space where '+' belongs: URL-decoded twice?)" if " " in encrypted else ""
            raise BadRequest(f"ciphertext is not valid base64{hint}") from None
        if len(data) < BLOCK or len(data) % AES.block_size:
            raise BadRequest(f"ciphertext length {len(data)} is not a positive multiple of 16")
        chained = self.key[:16] + data[:-16]  # each block XORs with the one before it
        plain = (
            int.from_bytes(self._ecb.decrypt(data), "big") ^ int.from_bytes(chained, "big")
        ).to_bytes(len(data), "big")
        pad = plain[-1]
        if not 1 <= pad <= BLOCK:
            raise BadRequest(f"bad padding (pad byte {pad}); wrong EncodingAESKey?")
        body = plain[16:-pad]
        if len(body) < _LENGTH.size:
            raise BadRequest("decrypted payload too short for its length field")
        (length,) = _LENGTH.unpack_from(body)
        if length > len(body) - _LENGTH.size:
            raise BadRequest(f"length field {length} exceeds the decrypted payload")
        end = _LENGTH.size + length
        receive_id = body[end:]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise ReceiveIdError("receive id does not match the app's corp_id")
        return body[_LENGTH.size : end]

    def encrypt(self, message: bytes) -> str:
        """Encrypt message bytes into base64 ciphertext, with our receive id."""
        raw = self.random_prefix() + _LENGTH.pack(len(message)) + message + self.receive_id.encode()
        pad = BLOCK - len(raw) % BLOCK
        raw += bytes((pad,)) * pad
        cipher = AES.new(self.key, AES.MODE_CBC, self.key[:16])
        return base64.b64encode(cipher.encrypt(raw)).decode("ascii")
