"""The encrypted envelope of a callback body (XML or JSON) and of a passive reply."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from callback.errors import BadRequest
from callback.inbound import xmlcodec
from callback.inbound.crypto import MsgCrypto


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the POST body carries: the ciphertext, and whether it came as JSON."""

    encrypted: str
    to_user: str = ""
    agent_id: str = ""
    as_json: bool = False


def _field(doc: dict[str, object], *names: str) -> str:
    for name in names:
        value = doc.get(name)
        if value is not None:
            return value if isinstance(value, str) else str(value)
    return ""


def read(body: bytes) -> Envelope:
    """Parse the POST body: `<xml><Encrypt>..` or `{"encrypt": ..}` (either key case), after a
    byte order mark if there is one."""
    body = body.removeprefix(xmlcodec.BOM)
    stripped = body.lstrip()
    if not stripped:
        raise BadRequest("empty body: expected the encrypted XML or JSON envelope")
    if stripped[:1] in (b"{", b"["):
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest("malformed JSON envelope") from None
        if not isinstance(doc, dict):
            raise BadRequest("JSON envelope is not an object")
        as_json = True
    else:
        root = xmlcodec.parse(body)
        inner = next(iter(root.values()), None)
        if not isinstance(inner, dict):
            raise BadRequest("XML envelope has no fields")
        doc, as_json = inner, False
    encrypted = _field(doc, "Encrypt", "encrypt")
    if not encrypted:
        raise BadRequest("envelope has no Encrypt field")
    return Envelope(
        encrypted=encrypted,
        to_user=_field(doc, "ToUserName", "tousername"),
        agent_id=_field(doc, "AgentID", "agentid"),
        as_json=as_json,
    )


def new_nonce() -> str:
    """A fresh nonce of 10 digits, like WeCom's (not a secret: the fast PRNG does)."""
    return str(random.randrange(1_000_000_000, 10_000_000_000))


def seal(
    crypto: MsgCrypto, plaintext: bytes, timestamp: str, nonce: str, *, as_json: bool
) -> bytes:
    """Encrypt and sign a reply plaintext into the envelope WeCom expects."""
    encrypted = crypto.encrypt(plaintext)
    sig = crypto.sign(timestamp, nonce, encrypted)
    if as_json:
        doc = {"encrypt": encrypted, "msgsignature": sig, "timestamp": timestamp, "nonce": nonce}
        return json.dumps(doc, separators=(",", ":")).encode()
    return (
        f"<xml><Encrypt>{xmlcodec.cdata(encrypted)}</Encrypt>"
        f"<MsgSignature>{xmlcodec.cdata(sig)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{xmlcodec.cdata(nonce)}</Nonce></xml>"
    ).encode()
