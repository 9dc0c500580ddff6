"""Config: TOML discovery, environment overrides, and errors that name the key and the fix."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from callback import config
from callback.config import (
    DEFAULT_API_BASE_URL,
    AppSettings,
    BotSettings,
    ServerSettings,
    WebhookSettings,
    from_mapping,
    load,
)
from callback.errors import ConfigError
from tests.conftest import AES_KEY, app_table

EXAMPLE = Path(__file__).resolve().parent.parent / "callback" / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_complete() -> None:
    settings = load(EXAMPLE, env={})
    assert set(settings.apps) >= {"hr", "notices"}
    assert settings.apps["notices"].receives is False  # the send-only example
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = [f.name for f in fields(ServerSettings)]
    documented += [f.name for f in fields(AppSettings) if f.name != "name"]
    documented += [f.name for f in fields(BotSettings) if f.name != "name"]
    documented += [f.name for f in fields(WebhookSettings) if f.name != "name"]
    for key in documented:  # every setting the code knows is in the example, commented
        assert f"{key} =" in text, f"config.example.toml does not document {key}"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[apps.hr]
corp_id = "wwcorp"
agent_id = 1000002
secret = "s"
token = "tok"
encoding_aes_key = "{AES_KEY}"
""",
    )
    settings = load(path, env={})
    app = settings.apps["hr"]
    assert (app.corp_id, app.agent_id, app.api_base_url) == (
        "wwcorp",
        1000002,
        DEFAULT_API_BASE_URL,
    )
    assert settings.server.callback_prefix == "/wecom/callback"
    assert settings.server.max_clock_skew_s == 300
    assert settings.server.handlers is None
    assert "tok" not in repr(app) and AES_KEY not in repr(app) and "secret='s'" not in repr(app)


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[apps.hr]
corp_id = "wwcorp"
agent_id = 1
token = "tok"
encoding_aes_key = "{AES_KEY}"
""",
    )
    env = {
        "WECOM_APPS__HR__SECRET": "from-env",
        "WECOM_APPS__HR__AGENT_ID": "1000005",
        "WECOM_APPS__SENDER__CORP_ID": "wwcorp",
        "WECOM_APPS__SENDER__AGENT_ID": "7",
        "WECOM_SERVER__MAX_CLOCK_SKEW_S": "0",
        "WECOM_SERVER__HANDLERS": "handlers.chat, handlers.menu",
    }
    settings = load(path, env=env)
    assert settings.apps["hr"].secret == "from-env"
    assert settings.apps["hr"].agent_id == 1000005
    assert settings.apps["sender"].agent_id == 7 and not settings.apps["sender"].receives
    assert settings.server.max_clock_skew_s == 0
    assert settings.server.handlers == ("handlers.chat", "handlers.menu")


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.find_config(None, {}) is None  # no file anywhere: sandbox
    (tmp_path / "config.toml").write_text("")
    assert config.find_config(None, {}) == Path("config.toml")
    other = tmp_path / "other.toml"
    other.write_text("")
    assert config.find_config(None, {"WECOM_CONFIG": str(other)}) == other
    assert config.find_config(str(other), {"WECOM_CONFIG": "nope"}) == other
    with pytest.raises(ConfigError, match="WECOM_CONFIG"):
        config.find_config(None, {"WECOM_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="--config"):
        config.find_config(str(tmp_path / "missing.toml"), {})


@pytest.mark.parametrize(
    ("change", "key", "hint"),
    [
        ({"encoding_aes_key": "x" * 42}, "apps.hr.encoding_aes_key", "43"),
        ({"encoding_aes_key": "x" * 42 + "="}, "apps.hr.encoding_aes_key", "43"),
        ({"token": "has space"}, "apps.hr.token", "32 letters or digits"),
        ({"token": ""}, "apps.hr.token", "go together"),
        ({"encoding_aes_key": ""}, "apps.hr.encoding_aes_key", "go together"),
        ({"corp_id": ""}, "apps.hr.corp_id", "CorpID"),
        ({"agent_id": "abc"}, "apps.hr.agent_id", "whole number"),
        ({"agent_id": -1}, "apps.hr.agent_id", "whole number"),
        ({"agent_id": True}, "apps.hr.agent_id", "whole number"),
        ({"secrt": "typo"}, "apps.hr.secrt", "unknown setting"),
        ({"api_base_url": "qyapi.weixin.qq.com"}, "apps.hr.api_base_url", "http"),
        ({"secret": 12}, "apps.hr.secret", "string"),
    ],
)
def test_app_errors_name_key_and_fix(change: dict[str, object], key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"apps": {"hr": app_table(**change)}})
    assert key in str(err.value) and hint in str(err.value)


def test_missing_agent_id_names_the_console() -> None:
    table = app_table()
    del table["agent_id"]
    with pytest.raises(ConfigError, match=r"apps.hr.agent_id: missing.*admin console"):
        from_mapping({"apps": {"hr": table}})


@pytest.mark.parametrize(
    ("server", "key"),
    [
        ({"callback_prefix": "wecom"}, "server.callback_prefix"),
        ({"max_clock_skew_s": -5}, "server.max_clock_skew_s"),
        ({"handlers": "not-a-list-entry,"}, None),
        ({"handlers": [1]}, "server.handlers"),
        ({"state": "postgres://x"}, "server.state"),
        ({"queue": "rq"}, "server.queue"),
        ({"reply_budget_ms": 0}, "server.reply_budget_ms"),
        ({"reply_budget_ms": 5000}, "server.reply_budget_ms"),
        ({"max_clock_skew_s": 2.7}, "server.max_clock_skew_s"),
        ({"queue": "celery", "state": "sqlite:///x.db"}, "server.broker_url"),
        ({"colour": "blue"}, "server.colour"),
    ],
)
def test_server_errors(server: dict[str, object], key: str | None) -> None:
    if key is None:  # a comma-separated string (from the environment) is accepted
        settings = from_mapping({"apps": {"hr": app_table()}, "server": server})
        assert settings.server.handlers == ("not-a-list-entry",)  # the empty entry dropped
        return
    with pytest.raises(ConfigError, match=key):
        from_mapping({"apps": {"hr": app_table()}, "server": server})


def test_no_apps_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"apps: no application"):
        from_mapping({})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[apps.hr\ncorp_id = 1"), env={})
    with pytest.raises(ConfigError, match="app names"):
        from_mapping({"apps": {"h r": app_table()}})


def test_edge_values_that_are_valid() -> None:
    server = from_mapping(
        {"apps": {"hr": app_table()}, "server": {"callback_prefix": "/cb/", "handlers": ""}}
    ).server
    assert server.callback_prefix == "/cb" and server.handlers is None  # empty: the default
    with pytest.raises(ConfigError, match="would put apps beside /healthz"):
        from_mapping({"apps": {"hr": app_table()}, "server": {"callback_prefix": "/"}})
    celery = from_mapping(
        {"apps": {"hr": app_table()}, "server": {"queue": "celery", "state": "redis://r:6379/0"}}
    ).server
    assert celery.broker_url == "redis://r:6379/0"
    with pytest.raises(ConfigError, match=r"CorpID in the WeCom admin console \(我的企业"):
        from_mapping({"apps": {"hr": app_table(corp_id="")}})


APP = f'[apps.hr]\ncorp_id = "ww1"\nagent_id = 1\ntoken = "t"\nencoding_aes_key = "{AES_KEY}"\n'
BOT = f'[bots.assistant]\ntoken = "BotTok"\nencoding_aes_key = "{AES_KEY}"\nbot_id = "aib1"\n'


def test_a_bot_alone_is_a_valid_config_and_its_keys_come_from_the_environment(
    tmp_path: Path,
) -> None:
    settings = load(write(tmp_path, BOT), env={"WECOM_BOTS__ASSISTANT__SECRET": "s3"})
    bot = settings.bots["assistant"]
    assert (bot.token, bot.bot_id, bot.mode, bot.secret) == ("BotTok", "aib1", "callback", "s3")
    assert settings.apps == {} and settings.server.bot_prefix == "/wecom/bot"
    assert "BotTok" not in repr(bot) and "s3" not in repr(bot)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[bots.assistant]\nmode = 'callback'\n", "bots.assistant.token: missing"),
        (BOT.replace('"BotTok"', '"bad token!"'), "bots.assistant.token: must be 1 to 32"),
        (BOT + "mode = 'ws'\n", "bots.assistant.mode: expected 'callback' or 'connection'"),
        ("[bots.b]\nmode = 'connection'\nbot_id = 'aib1'\n", "bots.b.secret: missing"),
        (BOT + "[server]\nbot_prefix = '/wecom/callback'\n", "server.bot_prefix: the same"),
        (BOT + "surprise = 1\n", "bots.assistant.surprise: unknown setting"),
        (BOT.replace("assistant", "hr") + APP, "bots.hr: also an app's name"),
    ],
)
def test_bad_bot_settings_name_the_key(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(error)):
        load(write(tmp_path, text), env={})


def test_errors_about_secret_values_and_state_urls_never_show_them() -> None:
    with pytest.raises(ConfigError, match=r"apps\.hr\.secret: expected a string, got a int") as err:
        from_mapping({"apps": {"hr": app_table(secret=123456789)}})  # an unquoted number
    assert "123456789" not in str(err.value)
    with pytest.raises(ConfigError, match=r"bots\.b\.secret") as err:
        from_mapping({"bots": {"b": {"mode": "connection", "bot_id": "x", "secret": ["s3cr3t"]}}})
    assert "s3cr3t" not in str(err.value)
    with pytest.raises(ConfigError, match=r"server\.state") as err:
        from_mapping({"apps": {"hr": app_table()},
                      "server": {"state": "redis+sentinel://:hunter2@h:26379/0"}})  # fmt: skip
    assert "hunter2" not in str(err.value) and "h:26379" in str(err.value)


def test_an_error_in_a_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[apps.my-app]
corp_id = "wwcorp"
agent_id = 1
token = "tok"
encoding_aes_key = "{AES_KEY}"
""",
    )
    with pytest.raises(ConfigError, match=r"agent_id.*WECOM_APPS__MY_APP__AGENT_ID"):
        load(path, env={"WECOM_APPS__MY_APP__AGENT_ID": "seven"})
    settings = load(path, env={"WECOM_APPS__MY_APP__SECRET": "s"})  # a shell has no `-` in names
    assert list(settings.apps) == ["my-app"] and settings.apps["my-app"].secret == "s"
    with pytest.raises(ConfigError) as err:  # a bad value in the file: no variable to name
        load(write(tmp_path, '[apps.hr]\ncorp_id = "ww"\nagent_id = "x"\n'), env={})
    assert "environment" not in str(err.value)
