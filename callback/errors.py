"""The one exception tree of wecom-callback, and the HTTP status each maps to."""

from __future__ import annotations

from callback.errcodes import hint


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


class ValidationError(WecomError):
    """An outbound message breaks a documented WeCom limit; raised before any request is made.

    The message names the field path, the value (shortened) and the limit; `code` is the errcode
    WeCom would have answered, where one is documented.
    """

    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        field: str,
        value: object = None,
        limit: str = "",
        code: int | None = None,
    ) -> None:
        super().__init__(message, code=code)
        #: Where the problem is, e.g. ``news.articles[2].title``.
        self.field = field
        #: The offending value, unshortened.
        self.value = value
        #: The rule it breaks, e.g. ``at most 128 bytes``.
        self.limit = limit


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


# -- sending ----------------------------------------------------------------------------------


class ApiError(WecomError):
    """WeCom answered a non-zero errcode (or could not be reached); `hint` says what to do."""

    http_status = 502

    def __init__(self, errcode: int, errmsg: str, api: str, *, app: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        self.hint = hint(errcode)
        where = f"app {app!r}: " if app else ""
        super().__init__(
            f"{where}{api} failed: errcode {errcode} ({self.hint}); WeCom said: {errmsg}",
            code=errcode,
        )


class NoAnswer(WecomError):
    """WeCom did not answer: a timeout after the request went out, a reset connection, or an
    HTTP 5xx. The request may have been delivered, so it is sent again only where WeCom's
    duplicate check makes a repeat harmless."""

    http_status = 504
    #: Set where it is raised: whether sending the request again is harmless (WeCom's
    #: duplicate check is on for it, or the call is idempotent).
    replayable = False


class Unreachable(WecomError):
    """The request never left: no connection to WeCom could be made. Safe to send again."""

    http_status = 502


class LeaseLost(WecomError):
    """The work's lease passed to another worker (this one stalled past it): stop, act no more."""


class RateLimited(WecomError):
    """Sending now would exceed a member's WeCom rate window (WeCom would drop it silently)."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def http_status(error: BaseException) -> int:
    """The HTTP status for an error: the one place errors become statuses."""
    if isinstance(error, WecomError):
        return error.http_status
    return 500
