"""Pytest fixtures for testing your own handlers: `wecom`, a sandboxed app with the emulator.

Installed as a pytest plugin (entry point `pytest11`), so in a project's tests::

    def test_help(wecom):
        result = wecom.text("help")
        assert result.status == 200
        assert "Commands" in result.reply.content

`result.reply` is the decrypted passive reply, parsed (None for an empty 200); `result.sent` is
what reached the WeCom emulator's send API for this callback, after background work finished.
Override the `wecom_handlers` fixture to choose handler modules (default: `[server] handlers`
of ./config.toml, else the modules of the project's handlers/ package, else the sandbox's demo).
The project is the current directory, first on sys.path, so its modules win over installed
ones. pytest's header names the modules the fixture loads; each test using it prints them
(`wecom.loaded`), so a failing test's captured output shows which code answered.

Callbacks go to the sandbox app "demo" unless a call names another with `app=`. Override the
`wecom_apps` fixture to choose the apps that receive callbacks (default: `["demo"]`); each other
app gets its own generated token, AES key and agent id in the sandbox's corp, and the emulator
knows it, so `ctx.send` from it works. The send-only app "notices" is always there::

    @pytest.fixture
    def wecom_apps():
        return ["demo", "hr"]

    def test_leave(wecom):
        assert wecom.text("leave", app="hr").reply.content == "Leave request sent"

AI bots: `wecom.bot("question")` sends a message to the sandbox bot "assistant" as WeCom does,
follows its stream (refresh callbacks) to the end, and returns what the member saw: its
`snapshots` and `final_content` (a `callback.devtools.aibot.Conversation`, checked strictly
against the protocol). Override `wecom_bots` to name other bots::

    def test_story(wecom):
        seen = wecom.bot("tell me a story")
        assert seen.final_content.endswith("The end.") and len(seen.snapshots) > 1
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from callback import config, loader
from callback.app import create_app
from callback.config import Settings
from callback.devtools import sandbox
from callback.devtools.aibot import AibotSide, Conversation
from callback.devtools.emulator import Emulator, EmulatorApp, MessageRecord
from callback.devtools.simulator import Simulator, plaintext
from callback.errors import ConfigError
from callback.inbound.endpoint import TESTING
from callback.inbound.messages import Message, parse

DEFAULT_APP = sandbox.APP
DEFAULT_BOT = sandbox.BOT


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

    @property
    def errors(self) -> list[str]:
        """What the callback's handler raised ("handler: Type: message"; waits for background
        work). A handler that raises fails the test unless the test looks here."""
        self._tester.settle(self._key)
        return self._tester.failures.seen(self._key)


class Failures(logging.Handler):
    """Handler exceptions by inbox key, from delivery's log (a raising handler still gets
    WeCom its 200, as in production: a test would not see it otherwise)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_key: dict[str, list[str]] = {}
        self.observed: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(record, "wecom_key", None)
        if key is None or record.exc_info is None or record.exc_info[1] is None:
            return
        error = record.exc_info[1]
        where = getattr(record, "wecom_handler", "handler")
        self.by_key.setdefault(key, []).append(f"{where}: {type(error).__name__}: {error}")

    def seen(self, key: str) -> list[str]:
        self.observed.add(key)
        return list(self.by_key.get(key, []))

    def unseen(self) -> list[str]:
        return [e for k, errors in self.by_key.items() if k not in self.observed for e in errors]


def with_bots(settings: Settings, names: Sequence[str]) -> Settings:
    """`settings` with exactly the AI bots `names` (callback mode), each new one generated."""
    if isinstance(names, str):
        raise TypeError(f"wecom_bots must be a list of bot names, got the string {names!r}")
    wanted = list(dict.fromkeys(names))
    kept = {n: b for n, b in settings.bots.items() if n in wanted}
    tables = {}
    for name in [n for n in wanted if n not in kept]:
        generated = sandbox.app_secrets()
        tables[name] = {
            "token": generated["token"],
            "encoding_aes_key": generated["encoding_aes_key"],
            "bot_id": f"aib{name}",
        }
    try:
        added = config.from_mapping({"bots": tables}, source="wecom_bots").bots if tables else {}
    except ConfigError as exc:
        raise ValueError(f"wecom_bots: {exc}") from exc
    return dataclasses.replace(settings, bots={**kept, **added})


def receiving_apps(settings: Settings, names: Sequence[str], emulator: Emulator) -> Settings:
    """`settings` with exactly `names` receiving callbacks, each new one generated in the
    sandbox's corp and registered with the emulator; send-only apps are kept."""
    if isinstance(names, str):
        raise TypeError(f"wecom_apps must be a list of app names, got the string {names!r}")
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValueError(f"wecom_apps is empty: name at least one app, e.g. [{DEFAULT_APP!r}]")
    kept = {n: a for n, a in settings.apps.items() if not a.receives or n in wanted}
    for name in wanted:
        if name in settings.apps and not settings.apps[name].receives:
            raise ValueError(
                f"wecom_apps: {name!r} is the sandbox's send-only app and cannot receive "
                "callbacks; give your app another name"
            )
    corp = settings.apps[DEFAULT_APP]
    agent_ids = itertools.count(max(a.agent_id for a in settings.apps.values()) + 1)
    tables = {
        name: {
            "corp_id": corp.corp_id,
            "agent_id": next(agent_ids),
            "api_base_url": corp.api_base_url,
            **sandbox.app_secrets(),
        }
        for name in wanted
        if name not in kept
    }
    try:
        added = config.from_mapping({"apps": tables}, source="wecom_apps").apps if tables else {}
    except ConfigError as exc:
        raise ValueError(f"wecom_apps: {exc}") from exc
    for app in added.values():
        emulator.add_app(EmulatorApp(app.corp_id, app.agent_id, app.secret, name=app.name))
    return dataclasses.replace(settings, apps={**kept, **added})


class WecomTester:
    """A sandboxed app (generated credentials, the emulator as WeCom) driven like WeCom does."""

    def __init__(
        self,
        directory: Path,
        handlers: Sequence[str] | None,
        timeout: float = 10.0,
        *,
        apps: Sequence[str] = (DEFAULT_APP,),
        bots: Sequence[str] = (DEFAULT_BOT,),
    ) -> None:
        env = {"WECOM_SANDBOX_DIR": str(directory)}
        self.emulator = sandbox.start_emulator(env)
        try:
            base = sandbox.settings(env | {sandbox.API_URL_ENV: self.emulator.url})
            self.settings = with_bots(receiving_apps(base, apps, self.emulator.emulator), bots)
            if handlers is None:
                self.loaded = loader.load_for(None, sandbox=True)
            else:
                self.loaded = loader.load_modules(handlers, "the wecom_handlers fixture")
            self.app = create_app(self.settings, router=self.loaded.router)
        except BaseException:
            self.emulator.stop()
            raise
        self.client: FlaskClient = self.app.test_client()
        self.client.environ_base[TESTING] = "1"
        self.delivery = self.app.extensions["wecom.delivery"]
        self.failures = Failures()
        logging.getLogger("wecom.delivery").addHandler(self.failures)
        self.timeout = timeout
        self.sims = {
            name: Simulator.create(
                app.token, app.encoding_aes_key, app.corp_id, agent_id=app.agent_id
            )
            for name, app in self.settings.apps.items()
            if app.receives
        }
        # "demo"'s simulator (else the first app's), for wecom.sim.fields(...) as before app=
        self.sim = self.sims.get(DEFAULT_APP) or next(iter(self.sims.values()))

        self._http: BaseWSGIServer | None = None

    def close(self) -> None:
        logging.getLogger("wecom.delivery").removeHandler(self.failures)
        if self._http is not None:
            self._http.shutdown()
        self.delivery.stop()
        self.emulator.stop()

    def url(self) -> str:
        """The app served over HTTP on 127.0.0.1 (started on first use), for clients that
        speak HTTP: the AI-bot side polls the server while the handler runs."""
        if self._http is None:
            self._http = make_server("127.0.0.1", 0, self.app, threaded=True)
            threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._http.port}"

    def bot(
        self,
        text: str,
        *,
        bot: str = DEFAULT_BOT,
        user: str = "zhangsan",
        group: bool = False,
        refresh_interval_s: float = 0.05,
        window_s: float = 60.0,
    ) -> Conversation:
        """A member's message to an AI bot (in a group: @-mentioning it), followed to the end
        of its stream as WeCom does; what the member saw."""
        settings = self.settings.bots.get(bot)
        if settings is None:
            raise LookupError(
                f"the wecom fixture has no AI bot {bot!r} (it has {', '.join(self.settings.bots)}"
                f"); add it to the wecom_bots fixture in conftest.py"
            )
        side = AibotSide(
            f"{self.url()}{self.settings.server.bot_prefix}/{bot}", settings.token,
            settings.encoding_aes_key, settings.bot_id, response_url_base=self.emulator.url,
            refresh_interval_s=refresh_interval_s, window_s=window_s, user=user,
        )  # fmt: skip
        message = side.group_text(text) if group else side.text(text)
        return side.converse(message)

    def simulator(self, app: str = DEFAULT_APP) -> Simulator:
        """The simulator (crypto, corp id, agent id) of a receiving app, to build any fields."""
        sim = self.sims.get(app)
        if sim is None:
            names = [*self.sims, app]
            raise LookupError(
                f"the wecom fixture has no receiving app {app!r} (it has {', '.join(self.sims)}); "
                f"add it to the wecom_apps fixture: override it in conftest.py to return {names!r}"
            )
        return sim

    # -- callbacks ------------------------------------------------------------------------------

    def post(
        self, fields: Mapping[str, Any], *, as_json: bool = False, app: str = DEFAULT_APP
    ) -> Result:
        """Post any callback fields to `app`, encrypted and signed; see text/click/event."""
        sim = self.simulator(app)
        since = len(self.emulator.emulator.messages())
        data = plaintext(fields, as_json=as_json)
        query, body = sim.post(data, as_json=as_json)
        response = self.client.post(
            f"{self.settings.server.callback_prefix}/{app}", query_string=query, data=body
        )
        plain = sim.open_reply(response.data) if response.status_code == 200 else b""
        reply: Message | None = parse(plain) if plain else None
        key = f"{app}:{parse(data).dedup_key}"
        return Result(response.status_code, reply, response.data, self, since, key)

    def text(self, content: str, *, user: str = "zhangsan", app: str = DEFAULT_APP) -> Result:
        return self.post(self.simulator(app).text(content, user=user), app=app)

    def click(self, key: str, *, user: str = "zhangsan", app: str = DEFAULT_APP) -> Result:
        return self.post(self.simulator(app).click(key, user=user), app=app)

    def card_action(
        self,
        key: str,
        *,
        task_id: str = "task-1",
        selected: Mapping[str, list[str]] | None = None,
        user: str = "zhangsan",
        app: str = DEFAULT_APP,
    ) -> Result:
        sim = self.simulator(app)
        return self.post(
            sim.card_action(key, task_id=task_id, selected=selected, user=user), app=app
        )

    def event(
        self, name: str, *, user: str = "zhangsan", app: str = DEFAULT_APP, **fields: Any
    ) -> Result:
        return self.post(self.simulator(app).event(name, user=user, **fields), app=app)

    # -- waiting ---------------------------------------------------------------------------------

    def settle(self, key: str) -> None:
        """Wait until the callback's handler (inbox key "app:dedup_key") finished and the outbox
        is empty."""
        deadline = time.monotonic() + self.timeout
        store = self.delivery.store
        while time.monotonic() < deadline:
            record = store.inbox_get(key)
            if (record is None or record.state == "done") and store.outbox_depth() == 0:
                return
            time.sleep(0.02)
        raise TimeoutError(f"callback {key} still running after {self.timeout} s")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The handler modules the `wecom` fixture loads by default, at the top of every run."""
    try:
        modules, reason = loader.choose(configured_handlers(), sandbox=True)
    except ConfigError as exc:
        return [f"wecom fixture: {exc}"]
    names = ", ".join(modules) or "none"
    return [f"wecom fixture: handler modules {names} ({reason}; see wecom_handlers)"]


def configured_handlers() -> Sequence[str] | None:
    """`[server] handlers` of $WECOM_CONFIG or ./config.toml, if there is such a file (only its
    [server] table is read: the fixture makes its own apps and bots)."""
    path = Path(os.environ.get("WECOM_CONFIG", "config.toml"))
    if path.is_file():
        return config.load_server(path).handlers
    return None


@pytest.fixture
def wecom_handlers() -> Sequence[str] | None:
    """Handler modules for the `wecom` fixture; override it in your conftest.py to choose."""
    return configured_handlers()


@pytest.fixture
def wecom_apps() -> Sequence[str]:
    """Apps that receive callbacks in the `wecom` fixture; override it to add yours (`app=`)."""
    return [DEFAULT_APP]


@pytest.fixture
def wecom_bots() -> Sequence[str]:
    """AI bots in the `wecom` fixture (callback mode); override it to name yours (`bot=`)."""
    return [DEFAULT_BOT]


@pytest.fixture
def wecom(
    tmp_path: Path,
    wecom_handlers: Sequence[str] | None,
    wecom_apps: Sequence[str],
    wecom_bots: Sequence[str],
) -> Iterator[WecomTester]:
    """Your handlers behind a sandboxed callback endpoint, with the WeCom emulator for sends."""
    tester = WecomTester(tmp_path, wecom_handlers, apps=wecom_apps, bots=wecom_bots)
    print("wecom fixture:", *tester.loaded.describe(), sep="\n")
    try:
        yield tester
        unseen = tester.failures.unseen()
    finally:
        tester.close()
    if unseen:
        pytest.fail(
            "a handler raised during the test (WeCom got its 200 anyway):\n  "
            + "\n  ".join(unseen)
            + "\nfix the handler, or assert on result.errors if the test expects it",
            pytrace=False,
        )


__all__ = [
    "DEFAULT_APP",
    "DEFAULT_BOT",
    "Result",
    "WecomTester",
    "configured_handlers",
    "pytest_report_header",
    "receiving_apps",
    "wecom",
    "wecom_apps",
    "wecom_bots",
    "wecom_handlers",
]
