"""Sandbox mode: generated credentials kept in a local file, for running with no WeCom account."""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from callback import config
from callback.config import Settings

if TYPE_CHECKING:
    from callback.devtools.emulator import EmulatorServer

APP = "demo"
AGENT_ID = 1000002
NOTICES_APP = "notices"  # the send-only mini-program application (miniprogram_notice)
NOTICES_AGENT_ID = 1000003
MINIPROGRAM_APPID = "wx_sandbox_miniprogram"
FILE_NAME = ".wecom-sandbox.json"
API_URL_ENV = "WECOM_SANDBOX_API_URL"
_ALPHABET = string.ascii_letters + string.digits
BOT = "assistant"  # the sandbox's AI bot (智能机器人), in callback mode
HOOK = "alerts"  # the sandbox's group robot (消息推送), as the README names it
_KEYS = ("corp_id", "secret", "notices_secret", "token", "encoding_aes_key")


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def app_secrets() -> dict[str, str]:
    """A new application's secret, token and EncodingAESKey, in the lengths WeCom gives them."""
    return {"secret": _random(43), "token": _random(32), "encoding_aes_key": _random(43)}


def directory(env: Mapping[str, str]) -> Path:
    """Where the sandbox keeps its files: $WECOM_SANDBOX_DIR, else the current directory."""
    return Path(env.get("WECOM_SANDBOX_DIR", "."))


def _new_credentials() -> dict[str, str]:
    return {
        "corp_id": "wwsandbox" + _random(9).lower(),
        **app_secrets(),
        "notices_secret": _random(43),
        "bot_id": "aibsandbox" + _random(10),
        "bot_token": _random(32),
        "bot_encoding_aes_key": _random(43),
    }


def credentials(env: Mapping[str, str]) -> dict[str, str]:
    """The sandbox's corp id, secrets, tokens and AES keys (apps and the AI bot), generated
    once and kept in a file; keys a file from an older version lacks are added to it."""
    path = directory(env) / FILE_NAME
    stored: dict[str, str] = {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and set(_KEYS) <= set(loaded):
            stored = {k: str(v) for k, v in loaded.items()}
    except (OSError, ValueError):
        pass
    creds = _new_credentials() | stored
    if creds == stored:
        return creds
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(creds, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return creds


def settings(env: Mapping[str, str]) -> Settings:
    """Settings for `demo` (callbacks), `notices` (mini-program, send-only) on the emulator, the
    AI bot `assistant` (callback mode) and the group robot `alerts`."""
    creds = credentials(env)
    base_url = env.get(API_URL_ENV) or running_emulator(env) or "http://127.0.0.1:8081"
    demo = {k: creds[k] for k in ("corp_id", "secret", "token", "encoding_aes_key")}
    notices = {"corp_id": creds["corp_id"], "secret": creds["notices_secret"]}
    apps = {
        APP: demo | {"agent_id": AGENT_ID, "api_base_url": base_url},
        NOTICES_APP: notices | {"agent_id": NOTICES_AGENT_ID, "api_base_url": base_url},
    }
    bot = {
        "token": creds["bot_token"],
        "encoding_aes_key": creds["bot_encoding_aes_key"],
        "bot_id": creds["bot_id"],
    }
    from callback.devtools.emulator.webhooks import DEFAULT_WEBHOOK_KEY  # sandbox mode only

    # the README's group robot, on the emulator (which takes its default robot key)
    hooks = {HOOK: {"key": DEFAULT_WEBHOOK_KEY, "api_base_url": base_url}}
    state = directory(env) / ".wecom-sandbox.db"
    data = config.apply_env(
        {"apps": apps, "bots": {BOT: bot}, "webhooks": hooks,
         "server": {"state": f"sqlite:///{state}"}}, env,
    )  # fmt: skip
    return config.from_mapping(data, source="sandbox", sandbox=True)


RUNTIME_FILE = ".wecom-sandbox.run"


@dataclass(frozen=True)
class Running:
    """A sandbox server started from this directory: where it and its emulator listen."""

    server: str  # base URL, e.g. http://127.0.0.1:8080 ("" when unknown)
    emulator: str
    pid: int = 0  # the `wecom serve` process (0 when unknown)


def local_url(bind: str) -> str:
    """The base URL a client on this machine uses for gunicorn's `--bind` HOST:PORT ("" for a
    unix socket): a wildcard address becomes the loopback one."""
    if bind.startswith(("unix:", "fd://")):
        return ""
    host, _, port = bind.rpartition(":")
    wildcard = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}  # noqa: S104
    host = wildcard.get(host, host)
    return f"http://{host}:{port or 8000}"


def record_run(server: str, emulator: str, env: Mapping[str, str]) -> None:
    """Note where the running sandbox listens (for `wecom simulate`, `send` and `doctor`)."""
    data = {"server": server, "emulator": emulator, "pid": os.getpid()}
    (directory(env) / RUNTIME_FILE).write_text(json.dumps(data), encoding="utf-8")


def forget_run(env: Mapping[str, str]) -> None:
    """Remove the note at stop, if it is this process's (a newer server may have replaced it)."""
    found = running(env)
    if found is not None and found.pid == os.getpid():
        (directory(env) / RUNTIME_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(env: Mapping[str, str]) -> Running | None:
    """The sandbox server started from this directory, if it still runs."""
    try:
        text = (directory(env) / RUNTIME_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = {"emulator": text}  # an older version's file: the emulator URL alone
    if not isinstance(data, dict) or not data.get("emulator"):
        return None
    found = Running(str(data.get("server", "")), str(data["emulator"]), int(data.get("pid", 0)))
    return None if found.pid and not _alive(found.pid) else found


def running_emulator(env: Mapping[str, str]) -> str | None:
    """The emulator URL of the sandbox server started from the same directory, if any."""
    found = running(env)
    return found.emulator if found else None


def start_emulator(env: Mapping[str, str], bind: str | None = None) -> EmulatorServer:
    """Start the WeCom emulator, in a thread, knowing the sandbox's two applications."""
    from callback.devtools.emulator import Emulator, EmulatorApp, EmulatorServer

    creds = credentials(env)
    emulator = Emulator(
        apps=(
            EmulatorApp(creds["corp_id"], AGENT_ID, creds["secret"], name=APP),
            EmulatorApp(
                creds["corp_id"],
                NOTICES_AGENT_ID,
                creds["notices_secret"],
                is_miniprogram=True,
                linked_appids=(MINIPROGRAM_APPID,),
                name=NOTICES_APP,
            ),
        )
    )
    host, _, port = (bind or "127.0.0.1:0").rpartition(":")
    server = EmulatorServer(emulator, host=host or "127.0.0.1", port=int(port or 0))
    server.start()
    return server
