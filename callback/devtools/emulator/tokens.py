"""access_token issue and lookup: one independent set of tokens per app secret."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from .errors import ApiError

TOKEN_LIFETIME = 7200


@dataclass(frozen=True)
class IssuedToken:
    """An access_token handed out by gettoken for one app ("corp/agent" key)."""

    value: str
    app_key: str
    issued_at: float
    expires_at: float


class TokenStore:
    """Every token issued and not revoked; locked by the Emulator that owns it."""

    def __init__(self) -> None:
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, app_key: str, now: float) -> IssuedToken:
        """A fresh token per call; earlier unexpired tokens of the app stay valid."""
        token = IssuedToken(secrets.token_urlsafe(96), app_key, now, now + TOKEN_LIFETIME)
        self._tokens[token.value] = token
        return token

    def resolve(self, value: str | None, now: float) -> str:
        """The app key of a live token; raises 41001 (missing), 40014 (unknown), 42001 (expired)."""
        if not value:
            raise ApiError(41001, "access_token is missing from the query string")
        token = self._tokens.get(value)
        if token is None:
            raise ApiError(40014, "access_token is unknown or was revoked")
        if now >= token.expires_at:
            raise ApiError(42001, "access_token has expired")
        return token.app_key

    def revoke_all(self) -> int:
        """Forget every token (later use gives 40014); returns how many there were."""
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def expire_all(self, now: float) -> int:
        """Make every live token expire now (later use gives 42001); returns how many."""
        live = [t for t in self._tokens.values() if now < t.expires_at]
        for token in live:
            self._tokens[token.value] = replace(token, expires_at=now)
        return len(live)
