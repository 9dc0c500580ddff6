"""Router matching, priority, includes, app filters; handler modules and entry points."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from callback import Router, loader
from callback.devtools.simulator import Simulator
from callback.errors import ConfigError
from callback.inbound.messages import from_fields


def resolve(router: Router, fields: dict[str, object], app: str = "hr") -> tuple[str, object]:
    found = router.compile()(from_fields(fields), app)
    assert found is not None
    route, match = found
    return route.handler.__name__, match


def test_each_decorator_matches_its_kind(sim: Simulator) -> None:
    router = Router()

    @router.click("K1")
    def on_click(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.card_action("APPROVE")
    def on_card(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.text("help")
    def on_help(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.text(re.compile(r"^order (\d+)$"))
    def on_order(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.event("LOCATION")
    def on_location(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.message("image")
    def on_image(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.default()
    def other(m, ctx): ...  # type: ignore[no-untyped-def]

    assert resolve(router, sim.click("K1")) == ("on_click", "K1")
    assert resolve(router, sim.card_action("APPROVE")) == ("on_card", "APPROVE")
    assert resolve(router, sim.event("template_card_menu_event", EventKey="APPROVE"))[0] == (
        "on_card"
    )
    assert resolve(router, sim.text("  help \n")) == ("on_help", "  help \n")
    name, match = resolve(router, sim.text("order 42"))
    assert name == "on_order" and isinstance(match, re.Match) and match[1] == "42"
    assert resolve(router, sim.event("LOCATION", Latitude="1"))[0] == "on_location"
    assert resolve(router, sim.fields("image", PicUrl="u", MediaId="m", MsgId=1))[0] == "on_image"
    for other_message in (
        sim.click("K2"),
        sim.text("Help"),
        sim.text("order x"),
        sim.event("view"),
    ):
        assert resolve(router, other_message)[0] == "other"


@pytest.mark.parametrize("name", ["click", "CLICK", "Click"])
def test_click_matches_the_event_name_in_any_case(sim: Simulator, name: str) -> None:
    """wechatpy's and others' samples send CLICK; WeCom documents click."""
    router = Router()

    @router.click("K1")
    def on_click(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.default()
    def other(m, ctx): ...  # type: ignore[no-untyped-def]

    assert resolve(router, sim.event(name, EventKey="K1")) == ("on_click", "K1")
    assert resolve(router, sim.event(name, EventKey="K2"))[0] == "other"
    assert resolve(router, sim.event("view", EventKey="K1"))[0] == "other"


def test_card_action_matches_a_task_card_button(sim: Simulator) -> None:
    router, any_card = Router(), Router()

    @router.card_action("key111")
    def on_key(m, ctx): ...  # type: ignore[no-untyped-def]

    @router.default()
    def other(m, ctx): ...  # type: ignore[no-untyped-def]

    @any_card.card_action()
    def on_any(m, ctx): ...  # type: ignore[no-untyped-def]

    taskcard = sim.event("taskcard_click", EventKey="key111", TaskId="taskid111")
    assert resolve(router, taskcard) == ("on_key", "key111")
    assert resolve(router, sim.event("TASKCARD_CLICK", EventKey="key111"))[0] == "on_key"
    assert resolve(router, taskcard | {"EventKey": "key222"})[0] == "other"
    assert resolve(any_card, taskcard) == ("on_any", "key111")
    found = any_card.compile()(from_fields(sim.click("key111")), "hr")
    assert found is None  # a menu click is not a card action


def test_priority_app_filter_and_includes(sim: Simulator) -> None:
    root, first, second = Router(), Router(), Router()

    @second.text("hi")
    def second_hi(m, ctx): ...  # type: ignore[no-untyped-def]

    @first.text("hi", app="sales")
    def first_hi_sales(m, ctx): ...  # type: ignore[no-untyped-def]

    @first.default()
    def first_default(m, ctx): ...  # type: ignore[no-untyped-def]

    @root.default(app="hr")
    def root_default(m, ctx): ...  # type: ignore[no-untyped-def]

    root.include(first)
    root.include(second)
    assert resolve(root, sim.text("hi"), app="sales")[0] == "first_hi_sales"
    assert resolve(root, sim.text("hi"), app="hr")[0] == "second_hi"
    # defaults only apply when no specific route of any router matched, own defaults first
    assert resolve(root, sim.text("bye"), app="hr")[0] == "root_default"
    assert resolve(root, sim.text("bye"), app="sales")[0] == "first_default"
    assert [r.kind for r in root.routes()] == ["text", "text", "default", "default"]
    with pytest.raises(ValueError, match="itself"):
        root.include(root)


def test_background_flag_and_describe() -> None:
    router = Router()

    @router.text(re.compile("^ask (.+)"), app="hr", background=True)
    def ask(m, ctx): ...  # type: ignore[no-untyped-def]

    (route,) = router.routes()
    assert route.background and route.app == "hr"
    described = route.describe()
    assert described.startswith("text('^ask (.+)') app=hr background -> ")
    assert described.endswith(".ask")
    with pytest.raises(ValueError, match="unknown route kind"):
        router.add("clickk", "X", ask)


def test_no_match_returns_none(sim: Simulator) -> None:
    assert Router().compile()(from_fields(sim.text("x")), "hr") is None


def test_loader_default_modules_and_order(tmp_path: Path) -> None:
    package = tmp_path / "handlers"
    package.mkdir()
    for name in ("zeta", "alpha", "_private"):
        (package / f"{name}.py").write_text("")
    assert loader.default_modules(project=tmp_path) == ["handlers.alpha", "handlers.zeta"]
    assert loader.default_modules(project=tmp_path / "elsewhere") == []
    root = loader.load(["callback.demo.menu", "callback.demo.chat"], use_entry_points=False)
    names = [r.handler.__module__ for r in root.routes() if r.kind != "default"]
    assert names.index("callback.demo.menu") < names.index("callback.demo.chat")


def test_loader_errors() -> None:
    with pytest.raises(ConfigError, match=r"cannot import 'no\.such\.module'"):
        loader.load(["no.such.module"])
    with pytest.raises(ConfigError, match="no module-level `router"):
        loader.load(["callback.errors"])


def test_loader_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package registering a handler module under wecom_callback.handlers."""
    (tmp_path / "acme_bot.py").write_text(
        textwrap.dedent("""
        from callback import Router
        router = Router()

        @router.text("acme")
        def acme(message, ctx):
            return "from acme"
    """)
    )
    dist = tmp_path / "acme_bot-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-bot\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[wecom_callback.handlers]\nacme = acme_bot\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    root = loader.load(["callback.demo.chat"])
    assert any(r.handler.__module__ == "acme_bot" for r in root.routes())
    # named in config too: loaded once, at the config's position
    root = loader.load(["acme_bot", "callback.demo.chat"])
    modules = [r.handler.__module__ for r in root.routes()]
    assert modules.count("acme_bot") == 1 and modules[0] == "acme_bot"
    sys.modules.pop("acme_bot", None)


def _package(where: Path, modules: dict[str, str]) -> None:
    where.mkdir(parents=True)
    (where / "__init__.py").write_text("")
    for name, reply in modules.items():
        (where / f"{name}.py").write_text(
            f"from callback import Router\nrouter = Router()\n"
            f"@router.text({name!r})\ndef {name}(message, ctx):\n    return {reply!r}\n"
        )


def test_loader_the_projects_package_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package without `router` loads its modules; a `handlers` package imported earlier from
    elsewhere (an installed one) gives way to the project's."""
    _package(tmp_path / "site" / "handlers", {"a": "installed"})
    _package(tmp_path / "project" / "handlers", {"b": "ours", "a": "ours too", "_c": "private"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "handlers", raising=False)
    import handlers  # type: ignore[import-not-found]  # the installed one, first on sys.path

    assert handlers.__file__.startswith(str(tmp_path / "site"))
    project = tmp_path / "project"
    try:
        loaded = loader.load_modules(["handlers"], "test", use_entry_points=False, project=project)
        assert [name for name, _ in loaded.modules] == ["handlers.a", "handlers.b"]
        assert all(path.startswith(f"{project}/handlers/") for _, path in loaded.modules)
        assert sys.path[0] == str(project)
        assert loader.choose(None, sandbox=False, project=project) == (
            ["handlers.a", "handlers.b"],
            f"the modules of {project}/handlers",
        )
        assert loader.choose(None, sandbox=True, project=tmp_path)[0] == ["callback.demo"]
        assert loader.choose(None, sandbox=False, project=tmp_path)[0] == []
    finally:
        for key in [k for k in sys.modules if k == "handlers" or k.startswith("handlers.")]:
            del sys.modules[key]


def test_loader_a_project_folder_named_callback_leaves_the_framework_alone(tmp_path: Path) -> None:
    (tmp_path / "callback").mkdir()  # say, the project's notes about WeCom callbacks
    before = sys.modules["callback"]
    loaded = loader.load_for(None, sandbox=True, project=tmp_path)
    assert loaded.modules[0][0] == "callback.demo" and sys.modules["callback"] is before
