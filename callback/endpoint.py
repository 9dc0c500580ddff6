"""The Flask edge: GET/POST {callback_prefix}/<app>; errors become statuses here and only here."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from callback.errors import BadRequest, CallbackError, http_status
from callback.metrics import Metrics
from callback.receiver import Answer, Receiver

log = logging.getLogger("wecom.endpoint")


def _refuse(app: str, error: CallbackError) -> Response:
    status = http_status(error)
    log.warning(
        "callback refused app=%s status=%d check=%s: %s remote=%s",
        app,
        status,
        type(error).__name__,
        error,
        request.remote_addr,
    )
    return Response(f"{error}\n", status=status, content_type="text/plain; charset=utf-8")


def _read_body(limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise BadRequest(f"body of {length} bytes is over the {limit}-byte limit")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise BadRequest(f"body is over the {limit}-byte limit")
    return data


def blueprint(receiver: Receiver, metrics: Metrics) -> Blueprint:
    """The callback routes for every app, bound to `receiver`."""
    bp = Blueprint("wecom_callback", __name__)
    prefix = receiver.settings.server.callback_prefix
    limit = receiver.settings.server.max_body_bytes

    def respond(app: str, answer: Answer, started: float) -> Response:
        outcome = "passive" if answer.body else "empty"
        metrics.callback(app, answer.kind, outcome, time.perf_counter() - started)
        return Response(answer.body, status=answer.status, content_type=answer.content_type)

    def refuse(app: str, error: CallbackError, started: float) -> Response:
        metrics.callback(app, "-", type(error).__name__, time.perf_counter() - started)
        return _refuse(app, error)

    @bp.get(f"{prefix}/<app>")
    def verify(app: str) -> Response:
        started = time.perf_counter()
        try:
            return respond(app, receiver.verify_url(app, request.args), started)
        except CallbackError as error:
            return refuse(app, error, started)

    @bp.post(f"{prefix}/<app>")
    def receive(app: str) -> Response:
        started = time.perf_counter()
        try:
            return respond(app, receiver.receive(app, request.args, _read_body(limit)), started)
        except CallbackError as error:
            return refuse(app, error, started)

    return bp
