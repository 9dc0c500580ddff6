"""Pytest fixtures for testing your own handlers: `wecom`, a sandboxed app with the emulator.

Installed as a pytest plugin (entry point `pytest11`), so in a project's tests::

    def test_help(wecom):
        result = wecom.text("help")
        assert result.status == 200
        assert "Commands" in result.reply.content

`result.reply` is the decrypted passive reply, parsed (None for an empty 200); `result.sent` is
what reached the WeCom emulator's send API for this callback, after background work finished.
Override the `wecom_handlers` fixture to choose handler modules (default: `[server] handlers`
of ./config.toml, else the modules of the handlers/ package).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from callback import config, loader, sandbox
from callback.app import create_app
from callback.emulator import MessageRecord
from callback.messages import Message, parse
from callback.simulator import Simulator, plaintext


@dataclass
class Result:
    """One simulated callback: the HTTP status, the passive reply, and what was sent."""

    status: int
    reply: Any  # the parsed passive reply (a Message value), or None
    body: bytes
    _tester: WecomTester = field(repr=False)
    _since: int = field(repr=False)
    _key: str = field(repr=False)

    @property
    def sent(self) -> list[MessageRecord]:
        """Messages the send API received because of this callback (waits for background work)."""
        self._tester.settle(self._key)
        return self._tester.emulator.emulator.messages()[self._since :]


class WecomTester:
    """A sandboxed app (generated credentials, the emulator as WeCom) driven like WeCom does."""

    def __init__(self, directory: Path, handlers: Sequence[str] | None, timeout: float = 10.0):
        env = {"WECOM_SANDBOX_DIR": str(directory)}
        self.emulator = sandbox.start_emulator(env)
        self.settings = sandbox.settings(env | {sandbox.API_URL_ENV: self.emulator.url})
        self.app = create_app(self.settings, router=loader.load(handlers))
        self.client: FlaskClient = self.app.test_client()
        self.delivery = self.app.extensions["wecom.delivery"]
        self.timeout = timeout
        demo = self.settings.apps[sandbox.APP]
        self.sim = Simulator.create(
            demo.token, demo.encoding_aes_key, demo.corp_id, agent_id=demo.agent_id
        )

    def close(self) -> None:
        self.delivery.stop()
        self.emulator.stop()

    # -- callbacks ------------------------------------------------------------------------------

    def post(self, fields: Mapping[str, Any], *, as_json: bool = False) -> Result:
        """Post any callback fields, encrypted and signed; see text/click/card_action/event."""
        since = len(self.emulator.emulator.messages())
        data = plaintext(fields, as_json=as_json)
        query, body = self.sim.post(data, as_json=as_json)
        response = self.client.post(
            f"{self.settings.server.callback_prefix}/{sandbox.APP}", query_string=query, data=body
        )
        plain = self.sim.open_reply(response.data) if response.status_code == 200 else b""
        reply: Message | None = parse(plain) if plain else None
        key = f"{sandbox.APP}:{parse(data).dedup_key}"
        return Result(response.status_code, reply, response.data, self, since, key)

    def text(self, content: str, *, user: str = "zhangsan") -> Result:
        return self.post(self.sim.text(content, user=user))

    def click(self, key: str, *, user: str = "zhangsan") -> Result:
        return self.post(self.sim.click(key, user=user))

    def card_action(
        self,
        key: str,
        *,
        task_id: str = "task-1",
        selected: Mapping[str, list[str]] | None = None,
        user: str = "zhangsan",
    ) -> Result:
        return self.post(self.sim.card_action(key, task_id=task_id, selected=selected, user=user))

    def event(self, name: str, *, user: str = "zhangsan", **fields: Any) -> Result:
        return self.post(self.sim.event(name, user=user, **fields))

    # -- waiting ---------------------------------------------------------------------------------

    def settle(self, key: str) -> None:
        """Wait until the callback's handler finished and the outbox is empty."""
        deadline = time.monotonic() + self.timeout
        store = self.delivery.store
        while time.monotonic() < deadline:
            record = store.inbox_get(key)
            if (record is None or record.state == "done") and store.outbox_depth() == 0:
                return
            time.sleep(0.02)
        raise TimeoutError(f"callback {key} still running after {self.timeout} s")


@pytest.fixture
def wecom_handlers() -> Sequence[str] | None:
    """Handler modules for the `wecom` fixture; override it in your conftest.py to choose."""
    path = Path(os.environ.get("WECOM_CONFIG", "config.toml"))
    if path.is_file():
        return config.load(path).server.handlers
    return None


@pytest.fixture
def wecom(tmp_path: Path, wecom_handlers: Sequence[str] | None) -> Iterator[WecomTester]:
    """Your handlers behind a sandboxed callback endpoint, with the WeCom emulator for sends."""
    tester = WecomTester(tmp_path, wecom_handlers)
    try:
        yield tester
    finally:
        tester.close()


__all__ = ["Result", "WecomTester", "wecom", "wecom_handlers"]
