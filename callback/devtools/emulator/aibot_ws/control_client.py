"""The long connection's part of EmulatorControl (the /_emulator/aibot_ws/ routes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AibotWsControl:
    """Mixed into EmulatorControl; every method returns the routes' JSON."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def ws_bots(self) -> list[dict[str, Any]]:
        """Registered bots ({"bot_id", "secret"})."""
        bots: list[dict[str, Any]] = self._call("GET", "aibot_ws/bots")
        return bots

    def ws_add_bot(self, bot_id: str, secret: str) -> None:
        """Register a bot's BotID and Secret."""
        self._post("aibot_ws/bots", {"bot_id": bot_id, "secret": secret})

    def ws_knobs(self) -> dict[str, Any]:
        """The knobs in force."""
        knobs: dict[str, Any] = self._call("GET", "aibot_ws/knobs")
        return knobs

    def ws_set_knobs(self, **changes: Any) -> dict[str, Any]:
        """Change knobs by name; returns the knobs in force."""
        knobs: dict[str, Any] = self._post("aibot_ws/knobs", changes)
        return knobs

    def ws_fault(
        self,
        kind: str,
        count: int = 1,
        *,
        cmd: str | None = None,
        errcode: int | None = None,
        ms: float | None = None,
    ) -> None:
        """kind "error" (errcode), "drop" or "delay" (ms) for the next count frames (of cmd)."""
        payload: dict[str, Any] = {"kind": kind, "count": count, "cmd": cmd}
        if errcode is not None:
            payload["errcode"] = errcode
        if ms is not None:
            payload["ms"] = ms
        self._post("aibot_ws/faults", payload)

    def ws_send_message(self, bot_id: str, body: Mapping[str, Any]) -> str:
        """An aibot_msg_callback to the bot's connection; its req_id (HTTP 409: not connected)."""
        return str(
            self._post("aibot_ws/send_message", {"bot_id": bot_id, "body": dict(body)})["req_id"]
        )

    def ws_send_event(self, bot_id: str, body: Mapping[str, Any]) -> str:
        """An aibot_event_callback to the bot's connection; its req_id."""
        return str(
            self._post("aibot_ws/send_event", {"bot_id": bot_id, "body": dict(body)})["req_id"]
        )

    def ws_drop_connection(self, bot_id: str) -> bool:
        """Cut the bot's connection without a close frame; False if it had none."""
        return bool(self._post("aibot_ws/drop_connection", {"bot_id": bot_id})["dropped"])

    def _list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        query = {key: value for key, value in params.items() if value is not None}
        records: list[dict[str, Any]] = self._call("GET", f"aibot_ws/{path}", params=query)
        return records

    def ws_connections(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Connections (JSON form of WsConnection)."""
        return self._list("connections", bot_id=bot_id)

    def ws_evictions(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Evictions (JSON form of WsEviction)."""
        return self._list("evictions", bot_id=bot_id)

    def ws_frames(self, conn_id: int | None = None) -> list[dict[str, Any]]:
        """Frames in and out (JSON form of WsFrame)."""
        return self._list("frames", conn_id=conn_id)

    def ws_callbacks(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Callbacks sent with their req_id bindings (JSON form of WsCallback)."""
        return self._list("callbacks", bot_id=bot_id)

    def ws_conversations(
        self, bot_id: str | None = None, chatid: str | None = None
    ) -> list[dict[str, Any]]:
        """What each member saw (JSON form of WsConversation)."""
        return self._list("conversations", bot_id=bot_id, chatid=chatid)

    def ws_refusals(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Frames answered with an errcode (JSON form of WsRefusal)."""
        return self._list("refusals", bot_id=bot_id)

    def ws_media(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Uploaded media (JSON form of WsMedia, without the bytes)."""
        return self._list("media", bot_id=bot_id)
