"""The console's Flask edge: the page and its files, the state document it polls, and the
action endpoints (JSON in, JSON out; bad input a 4xx, never a 500)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, request, send_from_directory

from callback.config import Settings
from callback.errors import WecomError
from callback.inbound.receiver import Receiver
from callback.router import Route
from callback.store import Store

from .actions import ActionError, Actions, Fired
from .sources import Sources, emulator_url
from .state import ConsoleState

STATIC = Path(__file__).parent / "static"


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def own_url(environ: Mapping[str, Any]) -> str:
    """This server's own listener (never the Host header, which a caller chooses)."""
    host, port = str(environ.get("SERVER_NAME", "127.0.0.1")), str(environ.get("SERVER_PORT"))
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - any address: ours
    host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
    return f"http://{host}:{port}" if port else f"http://{host}"


def local_host(host: str) -> bool:
    """Whether a Host header names this machine as a browser reaches it directly: localhost
    or an IP address. A page on another domain that re-points its name at us (DNS rebinding)
    sends its own name, and is refused."""
    if host.startswith("["):  # [v6] or [v6]:port
        name = host[1 : host.find("]")] if "]" in host else host
    else:  # name, name:port, v4, v4:port (a bare v6 has more colons: kept whole)
        name = host.split(":")[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def console_blueprint(state: ConsoleState, actions: Actions) -> Blueprint:
    """The /_console routes, bound to the app's state assembler and actions."""
    bp = Blueprint("wecom_console", __name__, url_prefix="/_console")

    @bp.before_request
    def local_only() -> Response | None:
        """The sandbox's console is for this machine's browser; one turned on with a config
        sits behind the operator's own authentication and may have any name."""
        if not state.settings.sandbox or local_host(request.host):
            return None
        refusal = ("the console answers to localhost or an IP address only (a page on another "
                   "domain must not reach it); open it by address")  # fmt: skip
        return _json({"error": refusal}, 403)

    @bp.get("")
    @bp.get("/")
    def page() -> Response:
        response = send_from_directory(STATIC, "console.html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/static/<path:name>")
    def static(name: str) -> Response:
        return send_from_directory(STATIC, name)

    @bp.get("/api/state")
    def document() -> Response:
        doc = state.document()
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True)
        doc["version"] = hashlib.sha1(text.encode()).hexdigest()[:16]  # noqa: S324 - an etag
        return _json(doc)

    def act(action: Callable[[str, Mapping[str, Any]], Fired]) -> Response:
        if not request.is_json:  # a form from another site cannot send JSON without CORS
            return _json({"error": "send a JSON object (Content-Type: application/json)"}, 415)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json({"error": "the body must be a JSON object"}, 400)
        try:
            return _json(action(own_url(request.environ), body).to_json())
        except ActionError as exc:
            return _json({"error": str(exc)}, exc.status)
        except WecomError as exc:
            return _json({"error": str(exc)}, 502)

    bp.add_url_rule("/api/text", "text", lambda: act(actions.text), methods=["POST"])
    bp.add_url_rule("/api/click", "click", lambda: act(actions.click), methods=["POST"])
    bp.add_url_rule("/api/card", "card", lambda: act(actions.card), methods=["POST"])
    bp.add_url_rule("/api/bot", "bot", lambda: act(actions.bot_text), methods=["POST"])
    bp.add_url_rule(
        "/api/bot/refresh", "bot_refresh", lambda: act(actions.bot_refresh), methods=["POST"]
    )
    return bp


def install(
    app: Flask, settings: Settings, store: Store, receiver: Receiver, routes: Iterable[Route]
) -> None:
    """Register the console on a Flask app (create_app calls this when it is enabled)."""
    sources = Sources(store, emulator_url([a.api_base_url for a in settings.apps.values()]))
    state = ConsoleState(settings, sources, receiver.delivery.parse, receiver.resolve,
                         tuple(routes))  # fmt: skip
    app.register_blueprint(console_blueprint(state, Actions(settings, sources)))
