"""The HTTP envelope: sealing a callback (§2.3) and opening a passive reply (§2.4)."""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .crypto import AibotCrypto, CryptoError

Issue = tuple[str, str]
"""(rule, detail): a broken rule found in one exchange."""
EMPTY_BODIES = (b"", b"success")
"""Raw reply bodies that mean "no reply" (§2.4), after stripping whitespace."""
_DIGITS = re.compile(r"[0-9]+")


def compact(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the notes' vectors are encrypted."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def new_nonce() -> str:
    """A random numeric nonce (the notes' examples are digits)."""
    return str(100_000 + secrets.randbelow(10**10))


@dataclass(frozen=True)
class Sealed:
    """A callback ready to POST: its decoded query values and JSON body."""

    query: Mapping[str, str]
    body: bytes

    @property
    def nonce(self) -> str:
        """The nonce the reply has to echo."""
        return self.query["nonce"]


def seal(
    crypto: AibotCrypto,
    plaintext: Mapping[str, Any],
    *,
    timestamp: str,
    nonce: str,
    random_prefix: bytes | None = None,
) -> Sealed:
    """Encrypt and sign a callback: POST ?msg_signature&timestamp&nonce with {"encrypt": …}."""
    encrypted = crypto.encrypt(compact(plaintext), random_prefix)
    query = {
        "msg_signature": crypto.sign(timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    return Sealed(query, compact({"encrypt": encrypted}))


@dataclass(frozen=True)
class OpenedReply:
    """A passive reply opened: its plaintext object (None = no reply) and what was wrong."""

    reply: dict[str, Any] | None
    issues: tuple[Issue, ...]


def open_reply(
    crypto: AibotCrypto, status: int, body: bytes, nonce: str, *, strict: bool
) -> OpenedReply:
    """Check and decrypt a reply; empty, 'success' and an encrypted {} all mean no reply.

    strict: msgsignature, timestamp and nonce are required and the signature is verified;
    otherwise each may be missing (LangBot sends only encrypt), but a nonce present must match.
    """
    if status != 200:
        return OpenedReply(None, (("http.status", f"HTTP {status}"),))
    if body.strip() in EMPTY_BODIES:
        return OpenedReply(None, ())
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return OpenedReply(None, (("envelope.json", f"not JSON: {body[:80]!r}"),))
    if not isinstance(doc, dict) or not isinstance(doc.get("encrypt"), str):
        return OpenedReply(None, (("envelope.json", f"no 'encrypt' string in {body[:80]!r}"),))
    issues = list(_envelope_fields(crypto, doc, nonce, strict=strict))
    try:
        opened = crypto.decrypt(doc["encrypt"])
    except CryptoError as error:
        return OpenedReply(None, (*issues, ("envelope.decrypt", str(error))))
    if opened.receive_id != crypto.receive_id.encode():
        issues.append(("envelope.receiveid", f"receive id {opened.receive_id[:40]!r}"))
    try:
        reply = json.loads(opened.message.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        issues.append(("reply.json", f"plaintext {opened.message[:80]!r}"))
        return OpenedReply(None, tuple(issues))
    if not isinstance(reply, dict):
        issues.append(("reply.json", f"plaintext is a {type(reply).__name__}"))
        return OpenedReply(None, tuple(issues))
    return OpenedReply(reply or None, tuple(issues))


def _envelope_fields(
    crypto: AibotCrypto, doc: Mapping[str, Any], nonce: str, *, strict: bool
) -> list[Issue]:
    issues: list[Issue] = []
    for name in ("msgsignature", "timestamp", "nonce"):
        if strict and name not in doc:
            rule = "envelope.msgsignature" if name == "msgsignature" else f"envelope.{name}"
            issues.append((rule, f"{name} is missing"))
    timestamp = doc.get("timestamp")
    if "timestamp" in doc and not (
        (isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp >= 0)
        or (isinstance(timestamp, str) and _DIGITS.fullmatch(timestamp))
    ):
        issues.append(("envelope.timestamp", f"timestamp {timestamp!r}"))
    if "nonce" in doc and doc["nonce"] != nonce:
        issues.append(("envelope.nonce", f"nonce {doc['nonce']!r}, the callback's was {nonce!r}"))
    signature = doc.get("msgsignature")
    if strict and "msgsignature" in doc:
        expected = crypto.sign(str(timestamp), str(doc.get("nonce")), doc["encrypt"])
        if not isinstance(signature, str) or not hmac.compare_digest(
            expected.encode(), signature.encode()
        ):
            issues.append(("envelope.msgsignature", f"msgsignature {signature!r} does not match"))
    return issues
