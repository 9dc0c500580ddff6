"""The AI bot's response_url endpoint: POST /cgi-bin/aibot/response?response_code=… (§2.9).

Plain JSON, no access_token; faults, latency and call counts apply as to the other APIs
(path "aibot/response").
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response

from .errors import ApiError
from .state import Emulator
from .wecom_api import dispatch, read_json_body

RESPONSE_PATH = "aibot/response"


def _respond(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    try:
        body: Any = read_json_body(req)
    except ApiError as error:
        body = error
    return emulator.aibot_respond(req.args.get("response_code"), body)


def aibot_blueprint(emulator: Emulator) -> Blueprint:
    """The response_url route, bound to emulator."""
    blueprint = Blueprint("wecom_aibot", __name__, url_prefix="/cgi-bin")

    @blueprint.route(f"/{RESPONSE_PATH}", methods=["GET", "POST"])
    def response_url() -> Response:
        return dispatch(emulator, RESPONSE_PATH, ("POST", _respond))

    return blueprint
