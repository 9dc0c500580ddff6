"""Docs stay honest: config keys and defaults match the code, examples compile, links resolve."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import callback
import callback.outbound
from callback.config import AppSettings, BotSettings, ServerSettings, WebhookSettings
from callback.inbound import messages
from callback.router import Router

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG_DOC = DOCS / "config.md"
HANDLERS_DOC = DOCS / "handlers.md"
EXAMPLE = ROOT / "callback" / "config.example.toml"

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
KEY_HEADING = re.compile(r"(server|apps\.NAME|bots\.NAME|webhooks\.NAME)\.([a-z_]+)")
DEFAULT_LITERAL = re.compile(r"Default: `([^`]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The text without fenced code blocks (whose `#` lines are not headings, nor links)."""
    return FENCE.sub("", text)


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every Markdown heading outside code blocks."""
    found = re.findall(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", prose(text), re.MULTILINE)
    return [(len(hashes), title) for hashes, title in found]


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, title in headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


# -- (a) config.md documents exactly the settings, with their defaults --------------------------


def settings_fields() -> dict[str, dataclasses.Field[Any]]:
    """`server.KEY` and `apps.NAME.KEY` -> the dataclass field behind it."""
    keys = {f"server.{f.name}": f for f in dataclasses.fields(ServerSettings)}
    keys |= {f"apps.NAME.{f.name}": f for f in dataclasses.fields(AppSettings) if f.name != "name"}
    keys |= {f"bots.NAME.{f.name}": f for f in dataclasses.fields(BotSettings) if f.name != "name"}
    keys |= {
        f"webhooks.NAME.{f.name}": f
        for f in dataclasses.fields(WebhookSettings)
        if f.name != "name"
    }
    return keys


def config_sections() -> dict[str, str]:
    """Each `### key` heading of config.md -> the text of its section."""
    parts = re.split(r"^(#{1,6}[ \t]+.*)$", prose(read(CONFIG_DOC)), flags=re.MULTILINE)
    sections: dict[str, str] = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        if not heading.startswith("### "):
            continue
        key = heading[4:].strip()
        assert KEY_HEADING.fullmatch(key), (
            f"config.md: every ### heading must be a key (server.KEY or apps.NAME.KEY), got {key!r}"
        )
        assert key not in sections, f"config.md documents {key} twice"
        sections[key] = body
    return sections


def test_config_doc_has_exactly_the_settings_keys() -> None:
    documented, expected = set(config_sections()), set(settings_fields())
    assert not expected - documented, f"config.md lacks {sorted(expected - documented)}"
    assert not documented - expected, f"config.md documents unknown {sorted(documented - expected)}"


def expected_default(field: dataclasses.Field[Any]) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


@pytest.mark.parametrize("key", sorted(settings_fields()))
def test_config_doc_default_matches_the_code(key: str) -> None:
    body = config_sections().get(key)
    if body is None:
        pytest.skip(f"{key} is not documented (reported by the test above)")
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    assert lines and lines[0].startswith("Default:"), (
        f"config.md: `### {key}` must be followed by a `Default: ...` line"
    )
    assert sum(line.startswith("Default:") for line in lines) == 1, f"{key}: one Default: line"
    line, default = lines[0], expected_default(settings_fields()[key])
    if default is dataclasses.MISSING:
        assert line.startswith("Default: required"), f"{key} has no default: {line!r}"
    elif default is None:
        assert line.startswith("Default: not set"), f"{key} defaults to None: {line!r}"
    else:
        literal = DEFAULT_LITERAL.match(line)
        assert literal, f"{key}: write the default as a TOML value in backticks: {line!r}"
        value = tomllib.loads(f"v = {literal[1]}")["v"]
        assert type(value) is type(default) and value == default, (
            f"config.md says {key} defaults to {value!r}; the code says {default!r}"
        )


# -- (b) config.example.toml and config.md list the same keys -----------------------------------


def example_keys() -> set[str]:
    data = tomllib.loads(read(EXAMPLE))
    keys = {f"server.{key}" for key in data.get("server", {})}
    for kind in ("apps", "bots", "webhooks"):
        for table in data.get(kind, {}).values():
            keys |= {f"{kind}.NAME.{key}" for key in table}
    return keys


def test_example_config_and_config_doc_list_the_same_keys() -> None:
    example, documented = example_keys(), set(config_sections())
    assert not example - documented, f"in config.example.toml only: {sorted(example - documented)}"
    assert not documented - example, f"in docs/config.md only: {sorted(documented - example)}"


# -- (c) handlers.md: code that compiles, and every decorator and public name -------------------


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL)


def test_handlers_doc_python_blocks_compile() -> None:
    blocks = python_blocks(read(HANDLERS_DOC))
    assert blocks, "handlers.md has no ```python blocks"
    for number, block in enumerate(blocks, 1):
        compile(block, f"docs/handlers.md python block {number}", "exec")


def router_decorators() -> list[str]:
    """Public Router methods that register a handler through `self._decorator`."""
    return sorted(
        name
        for name, member in vars(Router).items()
        if inspect.isfunction(member)
        and not name.startswith("_")
        and "self._decorator(" in inspect.getsource(member)
    )


def test_handlers_doc_shows_every_router_decorator() -> None:
    text = read(HANDLERS_DOC)
    decorators = router_decorators()
    assert {"click", "default", "text"} <= set(decorators)
    missing = [name for name in decorators if f"@router.{name}(" not in text]
    assert not missing, f"handlers.md never shows @router.NAME( for {missing}"


def test_handlers_doc_names_every_public_class() -> None:
    text = read(HANDLERS_DOC)
    names = set(callback.__all__) | set(callback.outbound.__all__)
    names |= {cls.__name__ for cls in messages.MESSAGE_TYPES.values()}
    names |= {cls.__name__ for cls in messages.EVENT_TYPES.values()}
    missing = sorted(name for name in names if not re.search(rf"\b{re.escape(name)}\b", text))
    assert not missing, f"handlers.md does not mention {missing}"


# -- (d) relative links point to files (and headings) that exist --------------------------------


EMULATOR_README = ROOT / "callback" / "devtools" / "emulator" / "README.md"


def link_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md")), EMULATOR_README]


def test_the_emulator_readme_is_linked_from_the_readme() -> None:
    assert "callback/devtools/emulator/README.md" in LINK.findall(prose(read(ROOT / "README.md")))


@pytest.mark.parametrize("path", link_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    text = prose(read(path))
    text = re.sub(r"`[^`\n]*`", "", text)  # a link inside code is not a link
    broken = []
    for target in LINK.findall(text):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # absolute URLs are not checked here
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(read(linked)):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"


def test_the_docs_say_the_project_directory_goes_first_on_sys_path() -> None:
    """What the code does (tests/test_installed.py runs it): the `wecom` commands, the server and
    the fixture import handler modules from the current directory first."""
    for doc in ("handlers.md", "deploy.md", "config.md"):
        text = " ".join(read(DOCS / doc).split())
        assert "does not put the current directory on `sys.path`" not in text, doc
        assert "first on `sys.path`" in text, doc
