"""The /cgi-bin/ blueprint: WeCom's HTTP surface (paths, methods, faults, latency)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Request, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from .apps import EmulatorApp
from .errors import INVALID_PARAMETER, ApiError, errmsg, error_body
from .faults import BodyProbe, Fault, FaultKind, no_body
from .holds import HOLD_KEY, HoldOrder
from .state import Emulator

Handler = Callable[[Emulator, Request, bool], dict[str, Any]]
"""(emulator, request, answered) -> answer; answered is False when the answer will be withheld."""
JSON_BODY_APIS = frozenset(
    {"message/send", "message/update_template_card", "message/recall", "aibot/response"}
    | {"webhook/send"}
)
"""API paths whose body is a JSON object (the ones a fault's CallMatch can look at)."""
MAX_JSON_DEPTH = 32
"""Deepest JSON nesting accepted; real bodies need about 6 levels."""


def json_response(payload: Mapping[str, Any], status: int = 200) -> Response:
    """A JSON answer with UTF-8 text left unescaped, as WeCom sends it."""
    text = json.dumps(payload, ensure_ascii=False)
    return Response(text, status=status, content_type="application/json; charset=UTF-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json_body(req: Request) -> Mapping[str, Any]:
    """The request body as a JSON object; ApiError 40058 when it is not one."""
    try:
        body = json.loads(req.get_data(cache=False), parse_constant=_reject_constant)
    except RequestEntityTooLarge:
        raise ApiError(INVALID_PARAMETER, "request body is too large") from None
    except (ValueError, RecursionError):
        raise ApiError(INVALID_PARAMETER, "request body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(INVALID_PARAMETER, "request body must be a JSON object")
    if _depth(body) > MAX_JSON_DEPTH:
        raise ApiError(INVALID_PARAMETER, f"request body nests deeper than {MAX_JSON_DEPTH}")
    return body


def _body_probe(api: str, req: Request) -> BodyProbe:
    """The call's JSON body for fault matching: read now (outside the lock), parsed on demand."""
    if api not in JSON_BODY_APIS or req.method != "POST":
        return no_body
    try:
        raw = req.get_data(cache=True)
    except RequestEntityTooLarge:
        return no_body
    parsed: list[Mapping[str, Any] | None] = []

    def probe() -> Mapping[str, Any] | None:
        if not parsed:
            try:
                body = json.loads(raw, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                body = None
            parsed.append(body if isinstance(body, dict) else None)
        return parsed[0]

    return probe


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _app(emulator: Emulator, req: Request) -> EmulatorApp:
    return emulator.authenticate(req.args.get("access_token"))


def _gettoken(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    corpsecret = req.args.get("corpsecret")
    if not corpsecret and "secret" in req.args:
        raise ApiError(41004, "corpsecret is required (the parameter is corpsecret, not secret)")
    token = emulator.get_token(req.args.get("corpid"), corpsecret)
    expires_in = round(token.expires_at - token.issued_at)
    return {"errcode": 0, "errmsg": "ok", "access_token": token.value, "expires_in": expires_in}


def _send(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    return emulator.send(_app(emulator, req), read_json_body(req), answered=answered)


def _update(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    return emulator.update_card(_app(emulator, req), read_json_body(req))


def _recall(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    return emulator.recall(_app(emulator, req), read_json_body(req))


def read_media_file(req: Request) -> tuple[str, bytes | None]:
    """The multipart `media` part of an upload: its filename and bytes (None without one);
    ApiError 40006 when it is too large."""
    try:
        media = req.files.get("media")
    except RequestEntityTooLarge:
        raise ApiError(40006, "the media file is too large") from None
    if media is None:
        return "", None
    return media.filename or "", media.read()


def _upload(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    app = _app(emulator, req)
    filename, data = read_media_file(req)
    record = emulator.upload(app, req.args.get("type"), filename, data)
    return {"errcode": 0, "errmsg": "ok", **record.to_json()}


def _callback_ips(emulator: Emulator, req: Request, answered: bool) -> dict[str, Any]:
    _app(emulator, req)
    return {"ip_list": emulator.callback_ips(), "errcode": 0, "errmsg": "ok"}


ROUTES: Mapping[str, tuple[str, Handler]] = {
    "gettoken": ("GET", _gettoken),
    "message/send": ("POST", _send),
    "message/update_template_card": ("POST", _update),
    "message/recall": ("POST", _recall),
    "media/upload": ("POST", _upload),
    "getcallbackip": ("GET", _callback_ips),
}
"""API path (below /cgi-bin/) -> (the one HTTP method it accepts, handler)."""


def _hint(emulator: Emulator) -> str:
    return f"{int(emulator.now())}_emulator_{secrets.token_hex(8)}"


def _fault_response(emulator: Emulator, fault: Fault, ip: str) -> Response:
    if fault.errcode is None:
        html = f"<html><body><h1>{fault.http_status} emulated fault</h1></body></html>"
        return Response(html, status=fault.http_status or 502, content_type="text/html")
    text = errmsg(fault.errcode, "injected fault", hint=_hint(emulator), ip=ip)
    return json_response({"errcode": fault.errcode, "errmsg": text}, fault.http_status or 200)


def _withhold(order: HoldOrder) -> Response:
    """Leave the order for HoldingMiddleware; the Response returned here is never sent."""
    request.environ[HOLD_KEY] = order
    return Response(status=204)


def dispatch(emulator: Emulator, api: str, route: tuple[str, Handler] | None = None) -> Response:
    """Answer one /cgi-bin/<api> call (route: its method and handler when not in ROUTES);
    WeCom errors are HTTP 200 with an errcode."""
    ip = request.remote_addr or "127.0.0.1"
    route = route or ROUTES.get(api)
    if route is None:
        error = ApiError(INVALID_PARAMETER, f"/cgi-bin/{api} is not an API this emulator knows")
        return json_response(error_body(error, hint=_hint(emulator), ip=ip), 404)
    probe = _body_probe(api, request)
    latency, fault = emulator.begin_call(api, probe)
    kind = None if fault is None else fault.kind
    if latency:
        time.sleep(latency)
    if fault is not None and kind is FaultKind.ERROR:
        if fault.errcode is not None:
            emulator.end_call(api, fault.errcode)
        return _fault_response(emulator, fault, ip)
    if fault is not None and kind is FaultKind.LOST:
        return _withhold(emulator.withhold(api, fault, probe(), None))
    method, handler = route
    try:
        if request.method != method:
            raise ApiError(INVALID_PARAMETER, f"/cgi-bin/{api} requires the {method} method")
        payload = handler(emulator, request, kind is not FaultKind.NO_ANSWER)
    except ApiError as error:
        payload = error_body(error, hint=_hint(emulator), ip=ip)
    if fault is not None and kind is FaultKind.NO_ANSWER:
        return _withhold(emulator.withhold(api, fault, probe(), payload))
    emulator.end_call(api, int(payload["errcode"]))
    if fault is not None and fault.kind is FaultKind.LATE:
        emulator.answered_late(api)
        request.environ[HOLD_KEY] = HoldOrder(fault.seconds, answer=True)
    return json_response(payload)


def cgi_blueprint(emulator: Emulator) -> Blueprint:
    """The WeCom API routes under /cgi-bin/, bound to emulator."""
    blueprint = Blueprint("wecom_cgi", __name__, url_prefix="/cgi-bin")

    @blueprint.route("/<path:api>", methods=["GET", "POST"])
    def cgi(api: str) -> Response:
        return dispatch(emulator, api)

    return blueprint
