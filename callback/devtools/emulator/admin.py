"""The /_emulator/ control API: inspect records and stats, inject faults, move the clock."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from .aibot_responses import check_second_call
from .apps import EmulatorApp
from .control_args import json_body, optional_int, optional_str, shown
from .faults import DEFAULT_MAX_HOLD, CallMatch
from .records import check_duplicate_answer
from .state import Emulator


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    return float(value)


def _path(body: dict[str, Any]) -> str | None:
    path = body.get("path")
    if path is not None and not isinstance(path, str):
        raise ValueError("path must be a string")
    return path


def _match(body: dict[str, Any]) -> CallMatch | None:
    match = body.get("match")
    return None if match is None else CallMatch.from_json(match)


def control_blueprint(emulator: Emulator) -> Blueprint:
    """The control routes under /_emulator/, bound to emulator."""
    bp = Blueprint("wecom_emulator_control", __name__, url_prefix="/_emulator")

    @bp.errorhandler(ValueError)
    @bp.errorhandler(TypeError)
    @bp.errorhandler(KeyError)
    @bp.errorhandler(OverflowError)
    @bp.errorhandler(RecursionError)
    def bad_request(error: Exception) -> tuple[Response, int]:
        return jsonify({"error": f"{type(error).__name__}: {error}"}), 400

    @bp.get("/")
    def index() -> Response:
        """What the control API offers (the URL the emulator prints at start)."""
        rules = sorted(
            (rule.rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
            for rule in current_app.url_map.iter_rules()
            if rule.rule.startswith("/_emulator/") and rule.rule != "/_emulator/"
        )
        return jsonify(
            {
                "emulator": "WeCom API emulator: control API",
                "docs": "callback/devtools/emulator/README.md",
                "routes": [f"{' '.join(methods)} {path}" for path, methods in rules],
            }
        )

    @bp.get("/messages")
    def messages() -> Response:
        args = request.args
        records = emulator.messages(touser=args.get("touser"), msgtype=args.get("msgtype"))
        return jsonify([record.to_json() for record in records])

    @bp.get("/duplicates")
    def duplicates() -> Response:
        return jsonify([record.to_json() for record in emulator.duplicates()])

    @bp.post("/duplicate_answer")
    def duplicate_answer() -> Response:
        emulator.set_duplicate_answer(check_duplicate_answer(json_body().get("answer")))
        return jsonify({"ok": True})

    @bp.get("/updates")
    def updates() -> Response:
        return jsonify([record.to_json() for record in emulator.updates()])

    @bp.get("/stats")
    def stats() -> Response:
        return jsonify(emulator.stats().to_json())

    @bp.get("/apps")
    def apps() -> Response:
        return jsonify([app.to_json() for app in emulator.apps()])

    @bp.post("/apps")
    def add_app() -> Response:
        return jsonify(emulator.add_app(EmulatorApp.from_json(json_body())).to_json())

    @bp.post("/tokens/revoke")
    def revoke_tokens() -> Response:
        return jsonify({"revoked": emulator.revoke_tokens()})

    @bp.post("/tokens/expire")
    def expire_tokens() -> Response:
        return jsonify({"expired": emulator.expire_tokens()})

    @bp.post("/fail")
    def fail() -> Response:
        body = json_body()
        count = int(_number(body, "count", 1))
        errcode, status = optional_int(body, "errcode"), optional_int(body, "http_status")
        emulator.fail_next(
            count, errcode=errcode, http_status=status, path=_path(body), match=_match(body)
        )
        return jsonify({"ok": True})

    @bp.post("/late_answer")
    def late_answer() -> Response:
        body = json_body()
        count = int(_number(body, "count", 1))
        ms = _number(body, "ms")
        emulator.late_answer_next(count, ms=ms, path=_path(body), match=_match(body))
        return jsonify({"ok": True})

    @bp.post("/no_answer")
    def no_answer() -> Response:
        body = json_body()
        count = int(_number(body, "count", 1))
        deliver = body.get("deliver")
        if not isinstance(deliver, bool):
            raise ValueError("deliver must be true (handle, then no answer) or false (lost)")
        emulator.no_answer_next(
            count,
            deliver=deliver,
            path=_path(body),
            match=_match(body),
            max_seconds=_number(body, "max_seconds", DEFAULT_MAX_HOLD),
        )
        return jsonify({"ok": True})

    @bp.get("/unanswered")
    def unanswered() -> Response:
        calls = emulator.unanswered(path=request.args.get("path"))
        return jsonify([call.to_json() for call in calls])

    @bp.post("/release_held")
    def release_held() -> Response:
        return jsonify({"released": emulator.release_held()})

    @bp.post("/latency")
    def latency() -> Response:
        body = json_body()
        emulator.set_latency(_number(body, "ms"), _path(body))
        return jsonify({"ok": True})

    @bp.get("/clock")
    def clock() -> Response:
        return jsonify({"now": emulator.now()})

    @bp.post("/clock/advance")
    def advance() -> Response:
        return jsonify({"now": emulator.advance(_number(json_body(), "seconds"))})

    @bp.post("/reset")
    def reset() -> Response:
        emulator.reset()
        return jsonify({"ok": True})

    @bp.post("/response_codes")
    def response_code() -> Response:
        msgid = json_body().get("msgid")
        if not isinstance(msgid, str):
            raise ValueError("msgid must be a string")
        return jsonify({"response_code": emulator.issue_response_code(msgid)})

    @bp.post("/aibot/response_codes")
    def aibot_register() -> Response:
        body = json_body()
        entry = emulator.register_aibot_response_code(
            optional_str(body, "response_code"),
            chattype=optional_str(body, "chattype") or "single",
            msgid=optional_str(body, "msgid"),
            userid=optional_str(body, "userid"),
            chatid=optional_str(body, "chatid"),
        )
        return jsonify(entry.to_json())

    @bp.get("/aibot/response_codes")
    def aibot_codes() -> Response:
        return jsonify([entry.to_json() for entry in emulator.aibot_response_codes()])

    @bp.get("/aibot/responses")
    def aibot_responses() -> Response:
        args = request.args
        records = emulator.aibot_responses(
            response_code=args.get("response_code"), shown=shown(args.get("shown"))
        )
        return jsonify([record.to_json() for record in records])

    @bp.post("/aibot/response_policy")
    def aibot_policy() -> Response:
        body = json_body()
        second_call = body.get("second_call")
        accept_stream = body.get("accept_stream")
        if accept_stream is not None and not isinstance(accept_stream, bool):
            raise ValueError("accept_stream must be true or false")
        emulator.set_aibot_response_policy(
            second_call=None if second_call is None else check_second_call(second_call),
            accept_stream=accept_stream,
        )
        return jsonify({"ok": True})

    return bp
