"""Group robots over HTTP: /cgi-bin/webhook/send and /cgi-bin/webhook/upload_media (§6), and
their control routes under /_emulator/webhooks.

Plain JSON, the key in the query, no access_token; faults, latency and call counts apply as to
the other APIs (paths "webhook/send" and "webhook/upload_media").
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response, jsonify, request

from .control_args import json_body, optional_int, shown
from .errors import ApiError
from .state import Emulator
from .wecom_api import dispatch, read_json_body, read_media_file

SEND_PATH = "webhook/send"
UPLOAD_PATH = "webhook/upload_media"


def _send(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    try:
        body: Any = read_json_body(req)
    except ApiError as error:
        body = error
    return emulator.webhook_send(req.args.get("key"), body)


def _upload(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    emulator.webhook_robot(req.args.get("key"))
    filename, data = read_media_file(req)
    return emulator.webhook_upload(req.args.get("key"), req.args.get("type"), filename, data)


def webhook_blueprint(emulator: Emulator) -> Blueprint:
    """The group-robot routes under /cgi-bin/webhook/, bound to emulator."""
    blueprint = Blueprint("wecom_webhook", __name__, url_prefix="/cgi-bin")

    @blueprint.route(f"/{SEND_PATH}", methods=["GET", "POST"])
    def send() -> Response:
        return dispatch(emulator, SEND_PATH, ("POST", _send))

    @blueprint.route(f"/{UPLOAD_PATH}", methods=["GET", "POST"])
    def upload() -> Response:
        return dispatch(emulator, UPLOAD_PATH, ("POST", _upload))

    return blueprint


def webhook_control_blueprint(emulator: Emulator) -> Blueprint:
    """/_emulator/webhooks: robots, what each group saw, the rate knobs."""
    bp = Blueprint("wecom_webhook_control", __name__, url_prefix="/_emulator/webhooks")

    @bp.errorhandler(ValueError)
    @bp.errorhandler(TypeError)
    def bad_request(error: Exception) -> tuple[Response, int]:
        return jsonify({"error": f"{type(error).__name__}: {error}"}), 400

    @bp.get("")
    def robots() -> Response:
        return jsonify([robot.to_json() for robot in emulator.webhooks()])

    @bp.post("")
    def add_robot() -> Response:
        data = json_body()
        key, name = data.get("key"), data.get("name", "")
        if not isinstance(key, str) or not isinstance(name, str):
            raise ValueError("key and name must be strings")
        return jsonify(emulator.add_webhook(key, name).to_json())

    @bp.get("/messages")
    def messages() -> Response:
        args = request.args
        records = emulator.webhook_messages(key=args.get("key"), shown=shown(args.get("shown")))
        return jsonify([record.to_json() for record in records])

    @bp.post("/policy")
    def policy() -> Response:
        data = json_body()
        emulator.set_webhook_policy(
            per_minute=optional_int(data, "per_minute"),
            rate_errcode=optional_int(data, "rate_errcode"),
        )
        return jsonify({"ok": True})

    return bp
