"""`wecom outbox list|retry|drop` on a real state file: an operator's view of dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from callback.cli import main
from callback.delivery.outbox import UNSENDABLE
from callback.store import SqliteStore
from callback.store.records import DEAD, OutboxItem
from tests.conftest import app_table

BODY = {"touser": "wangwu", "msgtype": "text", "agentid": 1000002, "text": {"content": "hi"}}


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, SqliteStore]:
    store = SqliteStore(str(tmp_path / "state.db"))
    config = tmp_path / "config.toml"
    table = "\n".join(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}"
                      for k, v in app_table().items())  # fmt: skip
    config.write_text(f'[server]\nstate = "sqlite:///{store.path}"\n\n[apps.hr]\n{table}\n')
    for item_id, error in [("a:reply", "no answer; may have been delivered"), ("b:send:0", "")]:
        store.outbox_add(OutboxItem(item_id, "hr", "message/send", (BODY,)))
        leased = store.outbox_claim(item_id, "server/1", 30)
        assert leased is not None
        if error:
            store.outbox_save(OutboxItem(**{**leased.__dict__, "state": DEAD, "error": error}))
    store.outbox_add(OutboxItem("c:reply", "hr", UNSENDABLE, ({"reply": "UpdateButtonReply"},),
                                state=DEAD, error="cannot be pushed: no ResponseCode"))  # fmt: skip
    return config, store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_pending_and_dead_items_with_why(
    state: tuple[Path, SqliteStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = state
    code, out, _ = run(capsys, "outbox", "list", "--config", str(config))
    assert code == 0 and "3 item(s): 1 pending, 2 dead" in out
    assert "a:reply\n    dead · app hr" in out and "why: no answer; may have been delivered" in out
    assert "text to wangwu" in out and "b:send:0\n    pending" in out
    code, out, _ = run(capsys, "outbox", "list", "--dead", "--config", str(config))
    assert "b:send:0" not in out and "2 item(s): 0 pending, 2 dead" in out


def test_retry_makes_a_dead_item_pending_and_warns_when_it_may_be_a_repeat(
    state: tuple[Path, SqliteStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, store = state
    code, out, _ = run(capsys, "outbox", "retry", "a:reply", "--config", str(config))
    assert code == 0 and "may already have reached the member" in out
    item = store.outbox_get("a:reply")
    assert item is not None and item.state == "pending" and item.attempts == 0
    code, _, err = run(capsys, "outbox", "retry", "b:send:0", "--config", str(config))
    assert code == 2 and "not dead" in err
    code, _, err = run(capsys, "outbox", "retry", "c:reply", "--config", str(config))
    assert code == 2 and "no send-API form" in err and "wecom outbox drop" in err
    assert store.outbox_get("c:reply").state == DEAD  # type: ignore[union-attr]
    code, _, err = run(capsys, "outbox", "retry", "nope", "--config", str(config))
    assert code == 2 and "no outbox item 'nope'" in err


def test_drop_forgets_a_dead_item_but_not_one_being_sent(
    state: tuple[Path, SqliteStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, store = state
    assert run(capsys, "outbox", "drop", "c:reply", "--config", str(config))[0] == 0
    assert store.outbox_get("c:reply") is None
    store.outbox_claim("b:send:0", "server/2", 30)  # a server is sending it now
    code, _, err = run(capsys, "outbox", "drop", "b:send:0", "--config", str(config))
    assert code == 2 and "sending it right now" in err and store.outbox_get("b:send:0")
