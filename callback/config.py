"""Settings: TOML (--config, $WECOM_CONFIG or ./config.toml) plus WECOM_* environment overrides.

Every problem raises ConfigError naming the key, what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from callback.errors import ConfigError

DEFAULT_API_BASE_URL = "https://qyapi.weixin.qq.com"
DEFAULT_WS_URL = "wss://openws.work.weixin.qq.com"
ENV_PREFIX = "WECOM_"
_APP_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_CONSOLE = "the WeCom admin console (应用管理 → your app"


@dataclass(frozen=True)
class AppSettings:
    """One WeCom application. Without token/encoding_aes_key it is send-only."""

    name: str
    corp_id: str
    agent_id: int
    secret: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    encoding_aes_key: str = field(default="", repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL

    @property
    def receives(self) -> bool:
        """Whether callbacks are configured (token and EncodingAESKey present)."""
        return bool(self.token)


@dataclass(frozen=True)
class BotSettings:
    """One WeCom AI bot (智能机器人): `token` and `encoding_aes_key` for the callback
    transport, `bot_id` (checked on every callback when set), `secret` for the long connection."""

    name: str
    token: str = field(default="", repr=False)
    encoding_aes_key: str = field(default="", repr=False)
    bot_id: str = ""
    secret: str = field(default="", repr=False)
    mode: str = "callback"  # or "connection"
    ws_url: str = DEFAULT_WS_URL


@dataclass(frozen=True)
class WebhookSettings:
    """A group robot (消息推送) to post to: its `key` is a secret (it is the whole credential)."""

    name: str
    key: str = field(default="", repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL


@dataclass(frozen=True)
class ServerSettings:
    """The [server] table."""

    callback_prefix: str = "/wecom/callback"
    bot_prefix: str = "/wecom/bot"
    max_clock_skew_s: int = 300
    handlers: tuple[str, ...] | None = None  # None: the modules of the handlers/ package
    reply_budget_ms: int = 4000
    state: str = "sqlite:///wecom-state.db"
    queue: str = "embedded"
    broker_url: str = ""  # queue = "celery": the broker (default: the state URL, if Redis)
    max_body_bytes: int = 256 * 1024
    lease_s: int = 30
    inbox_retention_s: int = 86400
    worker_threads: int = 32  # handler threads per process
    threads: int = 32  # request threads per process (wecom serve's gunicorn workers)
    console: bool | None = None  # the /_console page; None: on in sandbox mode only


@dataclass(frozen=True)
class Settings:
    """Everything create_app() needs; `source` says where it came from (a path, or env/sandbox)."""

    apps: Mapping[str, AppSettings]
    server: ServerSettings = ServerSettings()
    bots: Mapping[str, BotSettings] = field(default_factory=dict)
    webhooks: Mapping[str, WebhookSettings] = field(default_factory=dict)
    source: str = ""
    sandbox: bool = False


def find_config(path: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, else $WECOM_CONFIG, else ./config.toml; None when there is no file (sandbox)."""
    if path:
        if not Path(path).is_file():
            raise ConfigError(f"--config {path}: no such file; give the path of your config.toml")
        return Path(path)
    if env.get("WECOM_CONFIG"):
        candidate = Path(env["WECOM_CONFIG"])
        if not candidate.is_file():
            raise ConfigError(
                f"WECOM_CONFIG={candidate}: no such file; fix the path or unset WECOM_CONFIG"
            )
        return candidate
    default = Path("config.toml")
    return default if default.is_file() else None


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a TOML file, with environment overrides applied."""
    env = os.environ if env is None else env
    try:
        return from_mapping(apply_env(_read(path), env), source=str(path))
    except ConfigError as exc:
        raise _naming_variable(exc, env) from None


def _naming_variable(error: ConfigError, env: Mapping[str, str]) -> ConfigError:
    """The error, saying which environment variable set the key it names, if one did (the
    user would look for the bad value in the file in vain)."""
    key = str(error).split(":", 1)[0].split(" ", 1)[0]
    wanted = _env_name(key.split("."))
    ours = [v for v in env if v.upper().startswith(ENV_PREFIX)]
    var = next((v for v in ours if _env_name(v[len(ENV_PREFIX) :].split("__")) == wanted), None)
    if var is None:
        return error
    return ConfigError(f"{error} (the value comes from the environment variable {var})")


def _env_name(parts: list[str]) -> str:
    """A key path as apply_env matches it: any case, `-` and `_` alike."""
    return "__".join(p.lower().replace("-", "_") for p in parts)


def load_server(path: str | Path, env: Mapping[str, str] | None = None) -> ServerSettings:
    """Only the [server] table of a TOML file (with environment overrides), validated; the rest
    of the file is not checked (the pytest fixture runs in sandbox mode and needs only this)."""
    env = os.environ if env is None else env
    return _server(apply_env(_read(path), env).get("server", {}))


def _read(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc}); compare with the example `wecom init` writes"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def apply_env(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Overlay WECOM_APPS__NAME__KEY and WECOM_SERVER__KEY variables (names match any case)."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    apps = merged.setdefault("apps", {})
    if isinstance(apps, dict):
        merged["apps"] = apps = {k: dict(v) if isinstance(v, dict) else v for k, v in apps.items()}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        parts = var[len(ENV_PREFIX) :].split("__")
        if parts[0].upper() == "APPS" and len(parts) == 3 and isinstance(apps, dict):
            name = next((n for n in apps if _same(n, parts[1])), parts[1].lower())
            table = apps.setdefault(name, {})
            if isinstance(table, dict):
                table[parts[2].lower()] = value
        elif parts[0].upper() in ("BOTS", "WEBHOOKS") and len(parts) == 3:
            tables = merged.setdefault(parts[0].lower(), {})
            if isinstance(tables, dict):
                name = next((n for n in tables if _same(n, parts[1])), parts[1].lower())
                table = tables[name] = dict(tables.get(name, {}))
                table[parts[2].lower()] = value
        elif parts[0].upper() == "SERVER" and len(parts) == 2:
            server = merged.setdefault("server", {})
            if isinstance(server, dict):
                server[parts[1].lower()] = value
    return merged


def _same(name: str, in_variable: str) -> bool:
    """Whether a variable's NAME part means this table (any case; `_` for a `-`, which a
    shell's variable names cannot hold)."""
    return _env_name([name]) == _env_name([in_variable])


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown setting (a typo?); "
            f"the known ones are {', '.join(sorted(allowed))}"
        )


def _integer(value: Any, key: str, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, str) and value.strip().isdigit():  # from the environment
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{key}: expected a whole number {bounds}, got {value!r}")
    return value


#: Keys whose values are never shown, not even in an error about them.
SECRET_KEYS = frozenset({"secret", "token", "encoding_aes_key", "key"})


def _string(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        got = f"a {type(value).__name__}" if key in SECRET_KEYS else repr(value)
        raise ConfigError(f'{where}.{key}: expected a string, got {got}; quote it ("...")')
    return value.strip()


def shown_url(url: str) -> str:
    """A URL as it may be printed: without the user and password before its host."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _check_callback_keys(where: str, token: str, aes_key: str, page: str) -> None:
    """A callback Token and EncodingAESKey (each when given) in the forms WeCom issues; the
    error says where in the admin console (`page`) to copy them from."""
    if token and not _TOKEN_RE.fullmatch(token):
        raise ConfigError(
            f"{where}.token: must be 1 to 32 letters or digits, got {len(token)} characters; "
            f"copy it from {page}"
        )
    if aes_key and not _AES_KEY_RE.fullmatch(aes_key):
        raise ConfigError(
            f"{where}.encoding_aes_key: must be exactly 43 letters or digits, got {len(aes_key)} "
            f"characters; copy the EncodingAESKey again from {page}"
        )


def _app(name: str, table: Any) -> AppSettings:
    where = f"apps.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table [apps.{name}] with corp_id, agent_id, ...")
    if not _APP_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{where}: app names may use letters, digits, '_' and '-' (it is in URLs)"
        )
    _check_keys(table, {f.name for f in fields(AppSettings)} - {"name"}, where)
    corp_id = _string(table, "corp_id", where)
    if not corp_id:
        raise ConfigError(
            f"{where}.corp_id: missing; it is the CorpID in the WeCom admin console "
            "(我的企业 → 企业信息 → 企业ID)"
        )
    if "agent_id" not in table:
        raise ConfigError(f"{where}.agent_id: missing; it is the AgentId in {_CONSOLE})")
    agent_id = _integer(table["agent_id"], f"{where}.agent_id")
    token = _string(table, "token", where)
    aes_key = _string(table, "encoding_aes_key", where)
    callback_page = f"{_CONSOLE} → 接收消息 → 设置API接收)"
    if bool(token) != bool(aes_key):
        missing = "encoding_aes_key" if token else "token"
        raise ConfigError(
            f"{where}.{missing}: missing; token and encoding_aes_key go together (both for "
            f"callbacks, neither for a send-only app); both are in {callback_page}"
        )
    _check_callback_keys(where, token, aes_key, callback_page)
    base_url = _string(table, "api_base_url", where) or DEFAULT_API_BASE_URL
    if not re.match(r"https?://[^/\s]+", base_url):
        raise ConfigError(f"{where}.api_base_url: expected an http(s) URL, got {base_url!r}")
    return AppSettings(
        name=name,
        corp_id=corp_id,
        agent_id=agent_id,
        secret=_string(table, "secret", where),
        token=token,
        encoding_aes_key=aes_key,
        api_base_url=base_url.rstrip("/"),
    )


def _prefix(table: Mapping[str, Any], key: str, default: str) -> str:
    raw = str(table.get(key, default))
    if not raw.startswith("/"):
        raise ConfigError(f"server.{key}: must start with '/', got {raw!r}")
    prefix = raw.rstrip("/")
    if not prefix:
        raise ConfigError(
            f"server.{key}: '/' would put apps beside /healthz and /metrics; "
            f"use a path such as {default!r}"
        )
    return prefix


_BOT_CONSOLE = "the WeCom admin console (智能机器人 → your bot → API 模式"


def _bot(name: str, table: Any) -> BotSettings:
    where = f"bots.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table [bots.{name}] with token, encoding_aes_key")
    if not _APP_NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: bot names may use letters, digits, '_' and '-' (in URLs)")
    _check_keys(table, {f.name for f in fields(BotSettings)} - {"name"}, where)
    mode = _string(table, "mode", where) or "callback"
    if mode not in ("callback", "connection"):
        raise ConfigError(f"{where}.mode: expected 'callback' or 'connection', got {mode!r}")
    token = _string(table, "token", where)
    aes_key = _string(table, "encoding_aes_key", where)
    bot_id, secret = _string(table, "bot_id", where), _string(table, "secret", where)
    where_url = f"{_BOT_CONSOLE} → 设置接收消息 URL)"
    if mode == "callback":
        for key, value in (("token", token), ("encoding_aes_key", aes_key)):
            if not value:
                raise ConfigError(
                    f"{where}.{key}: missing; a bot in callback mode needs token and "
                    f"encoding_aes_key, both in {where_url}"
                )
        _check_callback_keys(where, token, aes_key, where_url)
    else:
        for key, value in (("bot_id", bot_id), ("secret", secret)):
            if not value:
                raise ConfigError(
                    f"{where}.{key}: missing; a bot in connection mode needs bot_id and "
                    f"secret, both in {_BOT_CONSOLE} → 长连接)"
                )
    ws_url = _string(table, "ws_url", where) or DEFAULT_WS_URL
    if not re.match(r"wss?://[^/\s]+", ws_url):
        raise ConfigError(f"{where}.ws_url: expected a ws(s) URL, got {ws_url!r}")
    return BotSettings(name, token, aes_key, bot_id, secret, mode, ws_url.rstrip("/"))


def _webhook(name: str, table: Any) -> WebhookSettings:
    where = f"webhooks.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table [webhooks.{name}] with key")
    if not _APP_NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: webhook names may use letters, digits, '_' and '-'")
    _check_keys(table, {f.name for f in fields(WebhookSettings)} - {"name"}, where)
    key = _string(table, "key", where)
    if not key:
        raise ConfigError(
            f"{where}.key: missing; it is the key=... part of the robot's webhook URL (group "
            f"chat → 消息推送 → the robot); prefer WECOM_WEBHOOKS__{name.upper()}__KEY"
        )
    if "key=" in key or "/" in key:
        raise ConfigError(f"{where}.key: give only the key, not the whole webhook URL")
    base_url = _string(table, "api_base_url", where) or DEFAULT_API_BASE_URL
    if not re.match(r"https?://[^/\s]+", base_url):
        raise ConfigError(f"{where}.api_base_url: expected an http(s) URL, got {base_url!r}")
    return WebhookSettings(name, key, base_url.rstrip("/"))


def _server(table: Any) -> ServerSettings:
    if not isinstance(table, dict):
        raise ConfigError("server: expected a table [server]")
    _check_keys(table, {f.name for f in fields(ServerSettings)}, "server")
    defaults = ServerSettings()
    prefix = _prefix(table, "callback_prefix", defaults.callback_prefix)
    bot_prefix = _prefix(table, "bot_prefix", defaults.bot_prefix)
    if bot_prefix == prefix:
        raise ConfigError(
            f"server.bot_prefix: the same as server.callback_prefix ({prefix!r}); bots and "
            "apps need URLs of their own, e.g. '/wecom/bot'"
        )
    handlers = table.get("handlers")
    if isinstance(handlers, str):  # from the environment: comma-separated; empty: the default
        handlers = [h.strip() for h in handlers.split(",") if h.strip()] or None
    if handlers is not None and not (
        isinstance(handlers, list) and all(isinstance(h, str) and h for h in handlers)
    ):
        raise ConfigError(
            "server.handlers: expected a list of module names, e.g. ['handlers.menu']"
        )
    state = str(table.get("state", defaults.state))
    if not state.startswith(("sqlite://", "memory://", "redis://", "rediss://")):
        raise ConfigError(
            "server.state: expected sqlite:///PATH, memory:// or redis://HOST, got "
            f"{shown_url(state)!r}"
        )
    queue = str(table.get("queue", defaults.queue))
    if queue not in ("embedded", "celery"):
        raise ConfigError(f"server.queue: expected 'embedded' or 'celery', got {queue!r}")
    broker_url = str(table.get("broker_url", "")) or (
        state if state.startswith(("redis://", "rediss://")) else ""
    )
    if queue == "celery" and not broker_url:
        raise ConfigError(
            "server.broker_url: queue = 'celery' needs a broker; set broker_url = "
            "'redis://HOST:6379/1' (or use a redis:// state, which is then the default)"
        )
    return ServerSettings(
        callback_prefix=prefix,
        bot_prefix=bot_prefix,
        max_clock_skew_s=_integer(
            table.get("max_clock_skew_s", defaults.max_clock_skew_s), "server.max_clock_skew_s"
        ),
        handlers=tuple(handlers) if handlers is not None else None,
        reply_budget_ms=_integer(
            table.get("reply_budget_ms", defaults.reply_budget_ms),
            "server.reply_budget_ms",
            1,
            4800,  # WeCom gives up at 5 s: a reply ready later would only reach a retry
        ),
        state=state,
        queue=queue,
        broker_url=broker_url,
        max_body_bytes=_integer(
            table.get("max_body_bytes", defaults.max_body_bytes), "server.max_body_bytes", 1024
        ),
        lease_s=_integer(table.get("lease_s", defaults.lease_s), "server.lease_s", 1),
        inbox_retention_s=_integer(
            table.get("inbox_retention_s", defaults.inbox_retention_s),
            "server.inbox_retention_s",
            60,
        ),
        worker_threads=_integer(
            table.get("worker_threads", defaults.worker_threads), "server.worker_threads", 1
        ),
        threads=_integer(table.get("threads", defaults.threads), "server.threads", 1),
        console=_flag(table.get("console"), "server.console"),
    )


def _flag(value: Any, key: str) -> bool | None:
    """An optional true/false (from the environment: true/false, 1/0, yes/no)."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def from_mapping(data: Mapping[str, Any], source: str = "", sandbox: bool = False) -> Settings:
    """Validate a parsed config (file contents with overrides applied)."""
    _check_keys(data, {"apps", "bots", "webhooks", "server"}, "config")
    apps_table, bots_table = data.get("apps", {}), data.get("bots", {})
    hooks_table = data.get("webhooks", {})
    for kind, value in (("bots", bots_table), ("webhooks", hooks_table)):
        if not isinstance(value, dict):
            raise ConfigError(f"{kind}: expected tables [{kind}.NAME]")
    if not isinstance(apps_table, dict) or not (apps_table or bots_table or hooks_table):
        raise ConfigError(
            "apps: no application configured; add an [apps.NAME] table with corp_id, agent_id, "
            "secret, token and encoding_aes_key, or a [bots.NAME] table for an AI bot (`wecom "
            "init EXAMPLE.toml` writes a commented example)"
        )
    apps = {name: _app(name, table) for name, table in apps_table.items()}
    bots = {name: _bot(name, table) for name, table in bots_table.items()}
    both = sorted(set(apps) & set(bots))
    if both:
        raise ConfigError(
            f"bots.{both[0]}: also an app's name; apps and bots share one namespace (a "
            "handler's app='NAME' filters either), so give the bot another name"
        )
    webhooks = {name: _webhook(name, table) for name, table in hooks_table.items()}
    server = _server(data.get("server", {}))
    return Settings(
        apps=apps, server=server, bots=bots, webhooks=webhooks, source=source, sandbox=sandbox
    )
