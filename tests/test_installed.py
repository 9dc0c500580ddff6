"""The package installed as a user installs it (a wheel, not editable), used from a user's project:
their own handlers/ always answer, and every tool says which modules it loaded.

The wheel is built from this checkout and installed without its dependencies into a venv that
sees this interpreter's packages (flask, pytest, ...): no network needed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent

MYBOT = """\
from callback import Router

router = Router()


@router.text("hello")
def hello(message, ctx):
    return "Hello from mybot"
"""

USER_TEST = """\
def test_hello(wecom):
    result = wecom.text("hello", user="zhangsan")
    assert result.status == 200
    assert result.reply.content == "Hello from mybot"
"""


@dataclass(frozen=True)
class Venv:
    bin: Path
    home: Path

    def env(self) -> dict[str, str]:
        """A user's shell: the venv first on PATH, no PYTHONPATH, no WECOM_* variables."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "PYTHON"))}
        return keep | {"PATH": f"{self.bin}:{keep.get('PATH', '/usr/bin:/bin')}",
                       "HOME": str(self.home)}  # fmt: skip

    def run(self, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip


def _checked(*args: str | Path) -> None:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """This checkout as a wheel, installed into a fresh venv."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"  # a copy: building writes build/ and *.egg-info next to the code
    shutil.copytree(ROOT / "callback", source / "callback",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _checked(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "-w", base / "dist", source)  # fmt: skip
    (wheel,) = (base / "dist").glob("wecom_callback-*.whl")
    _checked(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", base / "venv")
    _checked(sys.executable, "-m", "pip", "--python", base / "venv" / "bin" / "python", "install",
             "-q", "--no-deps", "--no-index", wheel)  # fmt: skip
    home = base / "home"
    home.mkdir()
    return Venv(base / "venv" / "bin", home)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: its own handlers/ package and a tests/ directory."""
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "__init__.py").write_text("")
    (tmp_path / "handlers" / "mybot.py").write_text(MYBOT)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mybot.py").write_text(USER_TEST)
    return tmp_path


def test_the_package_ships_no_top_level_handlers(venv: Venv, tmp_path: Path) -> None:
    done = venv.run(tmp_path, "python", "-P", "-c", "import callback; print(callback.__file__)")
    site = Path(done.stdout.strip()).parent.parent
    assert str(site).startswith(str(venv.bin.parent)), done.stdout + done.stderr
    assert not (site / "handlers").exists()
    assert (site / "callback" / "demo" / "chat.py").is_file()


def test_plain_pytest_runs_the_projects_handlers(venv: Venv, project: Path) -> None:
    # `python -P -m pytest` is plain `pytest`: the current directory is not put on sys.path
    done = venv.run(project, "python", "-P", "-m", "pytest", "-p", "no:cacheprovider", "-rA")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    header = f"wecom fixture: handler modules handlers.mybot (the modules of {project}/handlers"
    assert header in done.stdout
    assert f"handlers.mybot  {project}/handlers/mybot.py" in done.stdout  # the test's own output


def test_wecom_routes_names_the_projects_modules(venv: Venv, project: Path) -> None:
    done = venv.run(project, "wecom", "routes")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"handler modules (the modules of {project}/handlers):"
    assert lines[1] == f"  handlers.mybot  {project}/handlers/mybot.py"
    assert lines[-1] == "  1. text('hello') app=* -> handlers.mybot.hello"


def test_wecom_routes_without_handlers_is_the_sandbox_demo(venv: Venv, tmp_path: Path) -> None:
    done = venv.run(tmp_path, "wecom", "routes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"handler modules (the sandbox's demo: there is no {tmp_path}/handlers):\n  callback.demo  "
    )


def test_wecom_serve_answers_with_the_projects_handlers(venv: Venv, project: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        ["wecom", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"], cwd=project,
        env=venv.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=30)
        url = f"http://127.0.0.1:{port}/wecom/callback/demo"
        done = venv.run(project, "wecom", "simulate", "text", "hello", "--url", url, "--wait", "0")
        assert "passive reply (text):\nHello from mybot" in done.stdout, done.stdout + done.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert f"Handlers:       handlers.mybot (the modules of {project}/handlers)" in out
    assert f"handler modules (the modules of {project}/handlers): handlers.mybot (" in out


def test_wecom_init_writes_the_shipped_example(venv: Venv, tmp_path: Path) -> None:
    done = venv.run(tmp_path, "wecom", "init")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote config.toml: fill in [apps.NAME]")
    example = (ROOT / "callback" / "config.example.toml").read_text(encoding="utf-8")
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == example
    (tmp_path / "config.toml").write_text("# mine\n")
    again = venv.run(tmp_path, "wecom", "init")
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "error: config.toml exists and was left as it is; remove it first, or give another "
        "path: wecom init PATH"
    )
    assert (tmp_path / "config.toml").read_text() == "# mine\n"
    elsewhere = venv.run(tmp_path, "wecom", "init", "etc/wecom.toml")
    assert elsewhere.returncode == 2 and "etc/wecom.toml: cannot write" in elsewhere.stderr
    (tmp_path / "etc").mkdir()
    assert venv.run(tmp_path, "wecom", "init", "etc/wecom.toml").returncode == 0
    assert (tmp_path / "etc" / "wecom.toml").read_text(encoding="utf-8") == example


def test_the_wheel_ships_the_consoles_page(venv: Venv, tmp_path: Path) -> None:
    code = "import callback.devtools.console as c, pathlib; print(pathlib.Path(c.__file__).parent)"
    done = venv.run(tmp_path, "python", "-P", "-c", code)
    static = Path(done.stdout.strip()) / "static"
    assert str(static).startswith(str(venv.bin.parent)), done.stdout + done.stderr
    assert {"console.html", "console.css", "console.js"} <= {p.name for p in static.iterdir()}
