"""The `wecom` fixture with several receiving apps (`wecom_apps`, `app=`): a user's test files run
in a separate pytest process, as tests/test_plugin.py does, then the fixture's errors in-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callback.devtools.testing import WecomTester

HANDLERS = """\
import time

from callback import Router
from callback.outbound import Text

router = Router()


@router.text("status", app="hr")
def hr_status(message, ctx):
    ctx.send(Text("Leave balance: 12 days"), [message.from_user])
    return "HR: your balance is on its way"


@router.text("status", app="demo")
def demo_status(message, ctx):
    return "Demo: all systems go"


@router.click("PAYSLIP", app="hr", background=True)
def payslip(message, ctx):
    time.sleep(0.3)  # result.sent must wait for it: it settles the hr inbox key
    ctx.reply(f"Payslip for {message.from_user}")


@router.event("enter_agent", app="hr")
def hr_welcome(message, ctx):
    return f"Welcome to HR, {message.from_user}"


@router.card_action("APPROVE", app="hr")
def hr_approve(message, ctx):
    return f"HR approved {message.task_id}"
"""

CONFTEST = """\
import pytest


@pytest.fixture
def wecom_apps():
    return ["demo", "hr"]
"""

MULTI_APP_TESTS = """\
import pytest


def test_same_key_goes_to_each_apps_route(wecom):
    hr = wecom.text("status", user="lisi", app="hr")
    assert hr.status == 200
    assert hr.reply.content == "HR: your balance is on its way"
    (sent,) = hr.sent
    assert sent.agent_id == wecom.settings.apps["hr"].agent_id
    assert sent.corp_id == wecom.settings.apps["demo"].corp_id
    assert sent.touser == ("lisi",)
    assert sent.body["text"]["content"] == "Leave balance: 12 days"

    demo = wecom.text("status", user="lisi")  # app="demo" by default
    assert demo.status == 200
    assert demo.reply.content == "Demo: all systems go"
    assert demo.sent == []


def test_background_send_from_hr_is_waited_for(wecom):
    result = wecom.click("PAYSLIP", user="wangwu", app="hr")
    assert result.status == 200 and result.reply is None
    (sent,) = result.sent
    assert sent.agent_id == wecom.settings.apps["hr"].agent_id
    assert sent.touser == ("wangwu",)
    assert sent.body["text"]["content"] == "Payslip for wangwu"
    assert wecom.click("PAYSLIP").reply is None  # no demo route for the key


def test_every_call_takes_app(wecom):
    assert wecom.event("enter_agent", user="lisi", app="hr").reply.content == "Welcome to HR, lisi"
    card = wecom.card_action("APPROVE", task_id="leave-7", app="hr")
    assert card.reply.content == "HR approved leave-7"
    fields = wecom.simulator("hr").text("status")
    assert wecom.post(fields, as_json=True, app="hr").reply.content.startswith("HR:")


def test_each_app_has_its_own_credentials_in_one_corp(wecom):
    demo, hr, notices = (wecom.settings.apps[n] for n in ("demo", "hr", "notices"))
    assert hr.corp_id == demo.corp_id == notices.corp_id
    assert len({demo.agent_id, hr.agent_id, notices.agent_id}) == 3
    assert hr.token != demo.token and hr.encoding_aes_key != demo.encoding_aes_key
    assert hr.secret not in (demo.secret, notices.secret)
    assert not notices.receives


def test_unknown_app_names_the_fix(wecom):
    with pytest.raises(LookupError, match=r"'finance'.*add it to the wecom_apps fixture"):
        wecom.text("status", app="finance")
"""

DEFAULT_APP_TESTS = """\
import pytest


def test_default_fixture_posts_to_demo_only(wecom):
    assert wecom.text("status").reply.content == "Demo: all systems go"
    with pytest.raises(LookupError, match=r"no receiving app 'hr'.*wecom_apps"):
        wecom.text("status", app="hr")
    assert sorted(wecom.settings.apps) == ["demo", "notices"]
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project), "HOME": str(project)},
    )  # fmt: skip


def test_a_users_multi_app_handlers_through_the_fixture(tmp_path: Path) -> None:
    write(tmp_path / "handlers" / "__init__.py", "")
    write(tmp_path / "handlers" / "office.py", HANDLERS)
    write(tmp_path / "multi" / "conftest.py", CONFTEST)
    write(tmp_path / "multi" / "test_multi_app.py", MULTI_APP_TESTS)
    write(tmp_path / "single" / "test_default_app.py", DEFAULT_APP_TESTS)
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout


@pytest.mark.parametrize(
    ("apps", "error", "message"),
    [
        ("hr", TypeError, "a list of app names, got the string 'hr'"),
        ([], ValueError, "wecom_apps is empty"),
        (["demo", "notices"], ValueError, "'notices' is the sandbox's send-only app"),
        (["demo", "h r"], ValueError, r"wecom_apps: apps\.h r: app names may use letters"),
    ],
)
def test_bad_wecom_apps_are_explained(
    tmp_path: Path, apps: list[str] | str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        WecomTester(tmp_path, [], apps=apps)


def test_apps_without_demo(tmp_path: Path) -> None:
    tester = WecomTester(tmp_path, [], apps=["hr", "hr"])
    try:
        assert sorted(tester.settings.apps) == ["hr", "notices"]
        assert tester.sim is tester.simulator("hr")
        assert tester.text("anything", app="hr").status == 200  # no route: an empty 200
        with pytest.raises(LookupError, match="'demo'"):
            tester.text("anything")
        assert tester.emulator.emulator.apps()[-1].name == "hr"
    finally:
        tester.close()


ROOT = Path(__file__).resolve().parent.parent

MYBOT = """\
from callback import Router

router = Router()


@router.text("hello")
def hello(message, ctx):
    return "Hello from mybot"
"""


def test_a_config_with_only_server_handlers(tmp_path: Path) -> None:
    """docs/config.md: the fixture reads only `[server] handlers`; `mybot.py` beside config.toml
    is found with plain `pytest` (python -P: the current directory is not put on sys.path)."""
    write(tmp_path / "config.toml", '[server]\nhandlers = ["mybot"]\n')
    write(tmp_path / "mybot.py", MYBOT)
    write(tmp_path / "tests" / "test_mybot.py", (
        "def test_hello(wecom):\n"
        "    assert wecom.text('hello').reply.content == 'Hello from mybot'\n"
    ))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "wecom fixture: handler modules mybot ([server] handlers" in done.stdout


FAILING = """\
from callback import Router
from callback.outbound.webhooks import WebhookMarkdown

router = Router()


@router.text("broken")
def broken(message, ctx):
    raise RuntimeError("the model is down")


@router.text("report", background=True)
def report(message, ctx):
    ctx.send(WebhookMarkdown("# Weekly\\\\n\\\\nAll green."), webhook="alerts")  # the README's
"""

FAILING_TESTS = """\
def test_ignores_the_error(wecom):
    assert wecom.text("broken").status == 200


def test_expects_the_error(wecom):
    result = wecom.text("broken")
    assert result.errors == ["handlers.bot.broken: RuntimeError: the model is down"]


def test_the_readme_report_posts_to_the_sandbox_robot(wecom):
    result = wecom.text("report")
    assert result.errors == [] and result.sent == []
    posted = wecom.emulator.emulator.webhook_messages()
    assert [p.body["markdown"]["content"] for p in posted] == ["# Weekly\\\\n\\\\nAll green."]
"""


def test_a_handler_that_raises_fails_the_test_unless_it_looks_at_errors(tmp_path: Path) -> None:
    write(tmp_path / "handlers" / "__init__.py", "")
    write(tmp_path / "handlers" / "bot.py", FAILING)
    write(tmp_path / "tests" / "test_bot.py", FAILING_TESTS)
    done = run_pytest(tmp_path)
    assert "3 passed, 1 error" in done.stdout, done.stdout + done.stderr  # an error at teardown
    assert "ERROR at teardown of test_ignores_the_error" in done.stdout
    assert "handlers.bot.broken: RuntimeError: the model is down" in done.stdout
    assert "assert on result.errors" in done.stdout
    assert "one request at a time" not in done.stdout  # a test client is no server to warn about
