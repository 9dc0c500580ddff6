"""/_emulator/aibot_ws/: the long connection's bots, knobs, faults, callbacks and records."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..control_args import json_body
from .hub import AibotWsHub, NotConnected


def _str(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return value


def aibot_ws_control_blueprint(hub: AibotWsHub) -> Blueprint:
    """The routes under /_emulator/aibot_ws, bound to hub."""
    bp = Blueprint("wecom_aibot_ws_control", __name__, url_prefix="/_emulator/aibot_ws")

    @bp.errorhandler(ValueError)
    @bp.errorhandler(TypeError)
    @bp.errorhandler(KeyError)
    def bad_request(error: Exception) -> tuple[Response, int]:
        return jsonify({"error": f"{type(error).__name__}: {error}"}), 400

    @bp.errorhandler(NotConnected)
    def not_connected(error: NotConnected) -> tuple[Response, int]:
        return jsonify({"error": f"NotConnected: {error}"}), 409

    @bp.get("/bots")
    def bots() -> Response:
        return jsonify([{"bot_id": b, "secret": s} for b, s in hub.bots().items()])

    @bp.post("/bots")
    def add_bot() -> Response:
        body = json_body()
        hub.add_bot(str(_str(body, "bot_id")), str(_str(body, "secret")))
        return jsonify({"ok": True})

    @bp.get("/knobs")
    def knobs() -> Response:
        return jsonify(hub.knobs().to_json())

    @bp.post("/knobs")
    def set_knobs() -> Response:
        return jsonify(hub.set_knobs(**json_body()).to_json())

    @bp.post("/faults")
    def faults() -> Response:
        body = json_body()
        kind, count, cmd = (
            body.get("kind"),
            _int(body, "count", 1),
            _str(body, "cmd", required=False),
        )
        if kind == "error":
            hub.fail_frames(count, errcode=_int(body, "errcode"), cmd=cmd)
        elif kind == "drop":
            hub.drop_acks(count, cmd=cmd)
        elif kind == "delay":
            ms = body.get("ms")
            if isinstance(ms, bool) or not isinstance(ms, int | float):
                raise ValueError("ms must be a number")
            hub.delay_acks(count, ms=float(ms), cmd=cmd)
        else:
            raise ValueError('kind must be "error", "drop" or "delay"')
        return jsonify({"ok": True})

    @bp.post("/send_message")
    def send_message() -> Response:
        body = json_body()
        return jsonify(
            {"req_id": hub.send_message(str(_str(body, "bot_id")), _object(body, "body"))}
        )

    @bp.post("/send_event")
    def send_event() -> Response:
        body = json_body()
        return jsonify({"req_id": hub.send_event(str(_str(body, "bot_id")), _object(body, "body"))})

    @bp.post("/drop_connection")
    def drop_connection() -> Response:
        return jsonify({"dropped": hub.drop_connection(str(_str(json_body(), "bot_id")))})

    @bp.get("/connections")
    def connections() -> Response:
        records = hub.connections(request.args.get("bot_id"))
        return jsonify([record.to_json() for record in records])

    @bp.get("/evictions")
    def evictions() -> Response:
        return jsonify([record.to_json() for record in hub.evictions(request.args.get("bot_id"))])

    @bp.get("/frames")
    def frames() -> Response:
        conn = request.args.get("conn_id")
        records = hub.frames(None if conn in (None, "") else int(conn))
        return jsonify([record.to_json() for record in records])

    @bp.get("/callbacks")
    def callbacks() -> Response:
        return jsonify([record.to_json() for record in hub.callbacks(request.args.get("bot_id"))])

    @bp.get("/conversations")
    def conversations() -> Response:
        args = request.args
        records = hub.conversations(args.get("bot_id"))
        chatid = args.get("chatid")
        return jsonify([c.to_json() for c in records if chatid in (None, c.chatid)])

    @bp.get("/refusals")
    def refusals() -> Response:
        return jsonify([record.to_json() for record in hub.refusals(request.args.get("bot_id"))])

    @bp.get("/media")
    def media() -> Response:
        return jsonify([record.to_json() for record in hub.media(request.args.get("bot_id"))])

    return bp
