"""Sandbox mode: generated credentials kept in a local file, for running with no WeCom account."""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path

from callback import config
from callback.config import Settings

APP = "demo"
AGENT_ID = 1000002
FILE_NAME = ".wecom-sandbox.json"
API_URL_ENV = "WECOM_SANDBOX_API_URL"
_ALPHABET = string.ascii_letters + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def credentials(env: Mapping[str, str]) -> dict[str, str]:
    """The sandbox's corp id, secret, token and AES key, generated once and kept in a file."""
    path = Path(env.get("WECOM_SANDBOX_DIR", ".")) / FILE_NAME
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(stored, dict) and {"corp_id", "secret", "token", "encoding_aes_key"} <= set(
            stored
        ):
            return {k: str(v) for k, v in stored.items()}
    except (OSError, ValueError):
        pass
    creds = {
        "corp_id": "wwsandbox" + _random(9).lower(),
        "secret": _random(43),
        "token": _random(32),
        "encoding_aes_key": _random(43),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(creds, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return creds


def settings(env: Mapping[str, str]) -> Settings:
    """Settings for one app, `demo`, whose API base URL is the local emulator."""
    app = dict(credentials(env), agent_id=AGENT_ID)
    app["api_base_url"] = env.get(API_URL_ENV, "http://127.0.0.1:8081")
    data = config.apply_env({"apps": {APP: app}, "server": {}}, env)
    return config.from_mapping(data, source="sandbox", sandbox=True)
