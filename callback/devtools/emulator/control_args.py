"""Arguments of the emulator's control routes (/_emulator/...): the JSON body and its typed
fields; a bad one is a ValueError, which each control blueprint answers with a 400."""

from __future__ import annotations

from typing import Any

from flask import request


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} without a body)."""
    body = request.get_json(force=True, silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{key} must be an integer")
    return value


def optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def shown(value: str | None) -> bool | None:
    """The `shown` query filter: true, false, or not given (None)."""
    if value in (None, ""):
        return None
    if value not in ("true", "false"):
        raise ValueError("shown must be true or false")
    return value == "true"
