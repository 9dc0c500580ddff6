"""The one exception tree of wecom-callback, and the HTTP status each maps to."""

from __future__ import annotations


class WecomError(Exception):
    """Base of every error this package raises on purpose."""

    http_status = 500
    #: The WeCom errcode (API) or crypto library return code (callbacks), where one exists.
    code: int | None = None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(WecomError):
    """The configuration is invalid; the message names the key, the problem and the fix."""


# -- callback input ---------------------------------------------------------------------------


class CallbackError(WecomError):
    """A callback request that we refuse; the message says which check failed (never a secret)."""

    http_status = 400


class BadRequest(CallbackError):
    """Malformed input: missing parameters, bad base64 or padding, bad XML/JSON, too large."""

    http_status = 400


class SignatureError(CallbackError):
    """The msg_signature does not match (crypto library code -40001)."""

    http_status = 403
    code = -40001


class ReceiveIdError(CallbackError):
    """The decrypted receive id is not this application's corp id (code -40005)."""

    http_status = 403
    code = -40005


class StaleTimestamp(CallbackError):
    """The timestamp is outside the allowed clock skew (replay protection)."""

    http_status = 403


class UnknownApp(CallbackError):
    """No application of that name is configured."""

    http_status = 404


class Unavailable(CallbackError):
    """A dependency (the state store) is down; WeCom will retry a 503."""

    http_status = 503


def http_status(error: BaseException) -> int:
    """The HTTP status for an error: the one place errors become statuses."""
    if isinstance(error, WecomError):
        return error.http_status
    return 500
