"""Shared helpers of bench/send_throughput.py and bench/answer_time.py: child processes that are
always stopped (their whole process group), the WeCom emulator in its own process, CPU time from
/proc, percentiles and the machine line of a report. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours minus WECOM_* (no stray config), the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env | extra


def spawn(command: Sequence[str], log: Path | None = None, **kw: Any) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (so that `stop` reaches its children, and a Ctrl-C in
    the terminal reaches only us: we stop it ourselves in a `finally`)."""
    if log is not None:
        with log.open("ab") as out:
            return subprocess.Popen(
                list(command), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
            )
    return subprocess.Popen(list(command), start_new_session=True, **kw)


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group of `proc`, SIGKILL it after `timeout`; idempotent."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (gunicorn workers) go too


def sigterm_as_interrupt() -> None:
    """Make SIGTERM behave like Ctrl-C, so that the `finally` blocks stop our children."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def http_json(url: str, method: str = "GET", timeout: float = 5.0) -> Any:
    """GET/POST (empty JSON body) `url` and decode the JSON answer."""
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_http(url: str, proc: subprocess.Popen[Any], log: Path | None, timeout: float = 30) -> None:
    """Poll `url` until it answers 200, or fail with the end of the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else "(no log)"
    raise RuntimeError(f"{url} did not answer (exit status {proc.poll()}):\n{tail}")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/PID/stat (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of process group `pgid`."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while we looked
    return total


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class EmulatorProcess:
    """`python -m callback.devtools.emulator --bind 127.0.0.1:PORT --quiet` in its own process
    (its own GIL), driven through its /_emulator/ control API."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "emulator.log"
        command = [sys.executable, "-m", "callback.devtools.emulator", "--quiet"]
        command += ["--bind", f"127.0.0.1:{self.port}"]
        self.proc = spawn(command, self.log, cwd=ROOT, env=child_env())
        try:
            wait_http(f"{self.url}/_emulator/stats", self.proc, self.log)
        except BaseException:
            stop(self.proc)
            raise

    def stats(self) -> dict[str, Any]:
        """GET /_emulator/stats: calls, errcodes, gettoken per app, messages, dropped..."""
        stats: dict[str, Any] = http_json(f"{self.url}/_emulator/stats")
        return stats

    def gettoken(self) -> int:
        """gettoken calls since the last reset, over every app."""
        return sum(int(n) for n in self.stats()["gettoken"].values())

    def messages(self) -> list[dict[str, Any]]:
        """The accepted message/send records."""
        records: list[dict[str, Any]] = http_json(f"{self.url}/_emulator/messages", timeout=30)
        return records

    def reset(self) -> None:
        """Forget tokens, messages and counters."""
        http_json(f"{self.url}/_emulator/reset", "POST")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop(self.proc)


def environment_line(packages: Sequence[str]) -> str:
    """CPU count and model, Python and the versions of `packages`."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )

    def of(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    versions = ", ".join(of(p) for p in packages)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), load average {load} at the end, "
        f"Python {platform.python_version()}, {versions}"
    )


def code_version() -> str:
    """The commit under test (read-only git), flagged when callback/ has local changes."""

    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "callback", "wsgi.py")
    return f"{commit} (with uncommitted changes in callback/)" if dirty else commit


def write_report(name: str, text: str) -> Path:
    """Write `text` to bench/out/NAME (the directory is git-ignored)."""
    OUT.mkdir(exist_ok=True)
    path = OUT / name
    path.write_text(text, encoding="utf-8")
    return path
