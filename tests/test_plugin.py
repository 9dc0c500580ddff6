"""The pytest plugin as a user meets it: the README's example run as a user's own test file, in
a separate pytest process (tests/test_handlers.py uses the fixture on the shipped handlers)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"## Testing your handlers.*?```python\n(.*?)```", text, re.DOTALL)
    assert found, "README.md has no 'Testing your handlers' example"
    return found.group(1)


def test_readme_example_runs_as_a_users_test_file(tmp_path: Path) -> None:
    (tmp_path / "test_my_handlers.py").write_text(readme_example(), encoding="utf-8")
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "__init__.py").write_text("")
    (handlers / "hello.py").write_text(
        "from callback import Router\n\nrouter = Router()\n\n\n"
        '@router.text("hello")\ndef hello(message, ctx):\n    return "Hello!"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_readme_example_passes_against_the_demo(tmp_path: Path) -> None:
    """A new user's first test, copied from the README into a project with no handlers yet:
    the fixture serves the sandbox's demo, which answers it as the README says."""
    (tmp_path / "test_first.py").write_text(readme_example(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
