"""Callback throughput under gunicorn: ours vs a bare Flask "success" vs a typical wechatpy handler.

    python bench/callback_throughput.py [--seconds 15] [--requests N] [--rounds 3]

Each target runs under gunicorn with 2 workers (access logs off) on a free 127.0.0.1 port, one
after the other, repeated for --rounds: ours as shipped (`wecom serve`'s worker class,
callback.serve.ThreadWorker with 32 threads), the others with gunicorn's sync worker, and
wechatpy also with the threaded one (`wechatpy-gthread`, like for like). Before each run a fresh
pool of distinct, encrypted and signed callbacks (1/3 text, 1/3 menu click, 1/3
template_card_event) is generated with callback.devtools.simulator, so every timestamp is seconds
old; wrk replays the pool through bench/replay.lua, each request once, at a fixed concurrency. A
sample of fresh requests is checked first (status 200 and a decryptable, correct passive reply),
and wrk counts
non-200 answers.

Prints a markdown table (median req/s, p50, p99 per target; ours/bare and ours/wechatpy) and
writes it to bench/out/latest.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import platform
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
sys.path.insert(0, str(ROOT))

from callback.demo.menu import MENU_TEXTS  # noqa: E402
from callback.devtools.simulator import Simulator  # noqa: E402
from callback.inbound import xmlcodec  # noqa: E402

APP_NAME = "bench"
CALLBACK_PATH = f"/wecom/callback/{APP_NAME}"
MENU_KEYS = ("MENU_HELP", "MENU_ABOUT")
CARD_LABELS = {"APPROVE": "Approved", "REJECT": "Rejected"}
TARGET_RATIOS = {"bare": 0.70, "wechatpy": 1.2, "wechatpy-gthread": 1.2}


@dataclass(frozen=True, slots=True)
class Credentials:
    """The one benchmark app as configured in WeCom's admin console."""

    token: str
    encoding_aes_key: str
    corp_id: str
    agent_id: int = 1000002

    @classmethod
    def random(cls) -> Credentials:
        """Fresh token, canonical 43-character EncodingAESKey (letters and digits) and corp id."""
        while True:
            key = base64.b64encode(secrets.token_bytes(32)).decode()[:43]
            if key.isalnum():
                break
        return cls(secrets.token_hex(8), key, "ww" + secrets.token_hex(8))


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test: its WSGI app, whether it answers with passive replies, and its
    gunicorn worker class and threads per worker."""

    name: str
    wsgi: str
    replies: bool
    worker: str = "sync"
    threads: int = 1


SHIPPED = {"worker": "callback.serve.ThreadWorker", "threads": 32}  # what `wecom serve` runs
TARGETS = (
    Target("bare", "bare_app:app", replies=False),
    Target("ours", "wsgi:app", replies=True, **SHIPPED),  # type: ignore[arg-type]
    Target("ours-no-inbox", "receive_path_app:app", replies=True, **SHIPPED),  # type: ignore[arg-type]
    Target("wechatpy", "wechatpy_app:app", replies=True),
    Target("wechatpy-gthread", "wechatpy_app:app", replies=True, worker="gthread", threads=32),
)


@dataclass(frozen=True, slots=True)
class Request:
    """One pre-generated callback and the passive reply it must get."""

    path: str  # path and query string
    body: bytes
    user: str
    reply_type: str  # text | update_button
    reply_text: str  # Content, or Button.ReplaceName


@dataclass(frozen=True, slots=True)
class Run:
    """One wrk run against one target."""

    target: str
    round: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non200: int
    empty: int
    socket_errors: int
    exhausted: bool
    server_cpu_us: float  # CPU time of gunicorn (master + workers) per answered request
    wrk_cpu_share: float  # wrk's CPU time / wall time (1.0 = one core)


# -- requests -----------------------------------------------------------------------------------


class Mix:
    """Distinct callbacks cycling text ("echo mN"), menu click and template-card button."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.counter = itertools.count()

    def _fields(self, n: int) -> tuple[dict[str, Any], str, str]:
        user, variant = f"user{n}", (n // 3) % 2
        if n % 3 == 0:
            word = f"m{n}"
            return self.sim.text(f"echo {word}", user=user), "text", word
        if n % 3 == 1:
            key = MENU_KEYS[variant]
            return self.sim.click(key, user=user), "text", MENU_TEXTS[key]
        key = tuple(CARD_LABELS)[variant]
        card = self.sim.card_action(key, task_id=f"task-{n}", user=user)
        return card, "update_button", CARD_LABELS[key]

    def take(self, count: int) -> list[Request]:
        """`count` new requests, timestamped now."""
        return [self._request(next(self.counter)) for _ in range(count)]

    def _request(self, n: int) -> Request:
        fields, reply_type, reply_text = self._fields(n)
        query, body = self.sim.post(fields)
        path = f"{CALLBACK_PATH}?{Simulator.query_string(query)}"
        return Request(path, body, str(fields["FromUserName"]), reply_type, reply_text)


def write_pool(path: Path, requests: Sequence[Request]) -> None:
    """One request a line, "<path?query>\\t<body>", as bench/replay.lua reads them."""
    with path.open("w", encoding="utf-8") as out:
        for req in requests:
            body = req.body.decode()
            assert "\t" not in body and "\n" not in body
            out.write(f"{req.path}\t{body}\n")


# -- servers ------------------------------------------------------------------------------------


def write_config(directory: Path, creds: Credentials, state: str | None = None) -> Path:
    """config.toml with the one app and the demo handlers; every other [server] setting keeps
    its default (max_clock_skew_s = 300, state = sqlite:///wecom-state.db in the working
    directory) unless `state` overrides the state store."""
    path = directory / "config.toml"
    server = 'handlers = ["callback.demo"]\n' + (f'state = "{state}"\n' if state else "")
    path.write_text(
        f"[apps.{APP_NAME}]\n"
        f'corp_id = "{creds.corp_id}"\n'
        f"agent_id = {creds.agent_id}\n"
        f'token = "{creds.token}"\n'
        f'encoding_aes_key = "{creds.encoding_aes_key}"\n'
        f"\n[server]\n{server}",
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(config: Path, creds: Credentials) -> dict[str, str]:
    """Environment for every server: ours reads WECOM_CONFIG, the wechatpy app BENCH_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    return env | {
        "WECOM_CONFIG": str(config),
        "BENCH_TOKEN": creds.token,
        "BENCH_ENCODING_AES_KEY": creds.encoding_aes_key,
        "BENCH_CORP_ID": creds.corp_id,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


class Server:
    """gunicorn with 2 workers of the target's class serving it in the temp directory."""

    def __init__(self, target: Target, workdir: Path, env: dict[str, str]) -> None:
        self.target = target
        self.port = free_port()
        self.log = workdir / f"gunicorn-{target.name}.log"
        command = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", "2", "--worker-class", target.worker, "--threads", str(target.threads),
            "--pythonpath", f"{ROOT},{BENCH}",
            "--log-level", "warning",
            target.wsgi,
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def __enter__(self) -> Server:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll GET /healthz until both workers can answer, or fail with the server log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, _ = http_call(self.port, "GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.target.name} did not start:\n{self.log.read_text()[-3000:]}")


def http_call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on its own connection; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "text/xml"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and its children (the gunicorn master and workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if pid == root or parent == root:
                total += process_cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while we looked
    return total


# -- checks and load ----------------------------------------------------------------------------


def check_reply(sim: Simulator, req: Request, body: bytes) -> str | None:
    """None if `body` is the correct encrypted passive reply to `req`, else what is wrong."""
    try:
        fields = xmlcodec.parse(sim.open_reply(body))["xml"]
    except Exception as exc:
        return f"reply does not decrypt/parse: {exc!r} body={body[:120]!r}"
    got = fields.get("Content") if req.reply_type == "text" else fields.get("Button", {})
    if req.reply_type == "update_button" and isinstance(got, dict):
        got = got.get("ReplaceName")
    if fields.get("MsgType") != req.reply_type or got != req.reply_text:
        return f"wrong reply {fields!r}; expected {req.reply_type} {req.reply_text!r}"
    if fields.get("ToUserName") != req.user:
        return f"reply addressed to {fields.get('ToUserName')!r}, not {req.user!r}"
    return None


def validate(server: Server, sim: Simulator, sample: Sequence[Request]) -> None:
    """Send `sample` one by one (also a warm-up); every answer must be 200 and correct."""
    for req in sample:
        status, body = http_call(server.port, "POST", req.path, req.body)
        problem = f"status {status}: {body[:200]!r}" if status != 200 else None
        if problem is None and server.target.replies:
            problem = check_reply(sim, req, body)
        elif problem is None and body != b"success":
            problem = f"expected b'success', got {body[:80]!r}"
        if problem:
            raise RuntimeError(f"{server.target.name}: {req.path}: {problem}")


@dataclass
class BenchContext:
    """What every run shares: arguments, temp dir, server environment, simulator and mix."""

    args: argparse.Namespace
    workdir: Path
    env: dict[str, str]
    sim: Simulator
    mix: Mix


def run_wrk(server: Server, pool: Path, args: argparse.Namespace, round_no: int) -> Run:
    """Replay the pool with wrk at fixed concurrency; parse replay.lua's JSON summary."""
    duration = "3600s" if args.requests else f"{args.seconds}s"
    command = [
        "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", duration,
        "--timeout", "10s", "-s", str(BENCH / "replay.lua"), f"http://127.0.0.1:{server.port}",
    ]  # fmt: skip
    env = os.environ | {
        "BENCH_POOL": str(pool),
        "BENCH_THREADS": str(args.threads),
        "BENCH_LIMIT": str(args.requests or 0),
    }
    server_before = tree_cpu_seconds(server.process.pid)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = tree_cpu_seconds(server.process.pid) - server_before
    wrk_cpu = (wrk_after.ru_utime - wrk_before.ru_utime) + (
        wrk_after.ru_stime - wrk_before.ru_stime
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(lines[-1])
    seconds = data["duration_us"] / 1e6
    return Run(
        target=server.target.name,
        round=round_no,
        requests=data["answered"],
        seconds=seconds,
        rps=data["answered"] / seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non200=data["non200"],
        empty=data["empty"],
        socket_errors=data["socket_errors"],
        exhausted=bool(data["exhausted"]) and not args.requests,
        server_cpu_us=server_cpu / max(data["answered"], 1) * 1e6,
        wrk_cpu_share=wrk_cpu / seconds,
    )


def pool_size(args: argparse.Namespace, best: float | None) -> int:
    """Requests to pre-generate: --requests, else enough for --seconds at twice the best rate
    seen for this target so far (--pool-rate before its first run)."""
    if args.requests:
        return int(args.requests)
    rate = 2 * best if best else args.pool_rate
    return max(1000, int(rate * args.seconds))


def bench_target(
    target: Target,
    round_no: int,
    ctx: BenchContext,
    best: float | None,
) -> Run:
    """Start the target, check a fresh sample, generate a fresh pool, run wrk, stop.

    Each run gets its own working directory, so ours starts with an empty state store
    (the default sqlite:///wecom-state.db, relative to the server's working directory)."""
    rundir = ctx.workdir / f"round{round_no}-{target.name}"
    rundir.mkdir()
    try:
        with Server(target, rundir, ctx.env) as server:
            validate(server, ctx.sim, ctx.mix.take(ctx.args.sample))
            size = pool_size(ctx.args, best)
            pool = rundir / "pool.txt"
            write_pool(pool, ctx.mix.take(size))
            run = run_wrk(server, pool, ctx.args, round_no)
    finally:
        if not ctx.args.keep:
            shutil.rmtree(rundir, ignore_errors=True)
    flag = "  POOL RAN OUT (run ended early)" if run.exhausted else ""
    print(
        f"round {round_no} {target.name:>8}: {run.rps:8.1f} req/s  p50 {run.p50_ms:6.2f} ms  "
        f"p99 {run.p99_ms:6.2f} ms  n={run.requests} non200={run.non200} "
        f"empty={run.empty} sockerr={run.socket_errors} server CPU {run.server_cpu_us:.0f} us/req "
        f"wrk {run.wrk_cpu_share:.0%} of a core{flag}",
        flush=True,
    )
    return run


# -- report -------------------------------------------------------------------------------------


def by_target(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs grouped by target, in TARGETS order (the targets that ran)."""
    groups = {t.name: [r for r in runs if r.target == t.name] for t in TARGETS}
    return {name: rs for name, rs in groups.items() if rs}


def round_ratios(runs: Sequence[Run], other: str) -> list[float]:
    """ours/other req/s within each round."""
    rounds = sorted({r.round for r in runs})
    rps = {(r.target, r.round): r.rps for r in runs}
    return [rps["ours", n] / rps[other, n] for n in rounds if (other, n) in rps]


def environment_line() -> str:
    """CPU count/model and the versions that matter."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    versions = ", ".join(
        f"{p} {version(p)}" for p in ("gunicorn", "Flask", "wechatpy", "pycryptodome")
    )
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {versions}, "
        f"{subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split(' [')[0]}"
    )


def _median(runs: Sequence[Run], attr: str) -> float:
    return statistics.median(float(getattr(r, attr)) for r in runs)


def target_rows(groups: dict[str, list[Run]]) -> list[str]:
    """The per-target table: medians over rounds, then every round's req/s."""
    lines = [
        "| target | req/s (median) | p50 ms | p99 ms | server CPU us/req | req/s per round "
        "| non-200 |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, rs in groups.items():
        per_round = " / ".join(f"{r.rps:.0f}" for r in rs)
        lines.append(
            f"| {name} | {_median(rs, 'rps'):.0f} | {_median(rs, 'p50_ms'):.2f} | "
            f"{_median(rs, 'p99_ms'):.2f} | {_median(rs, 'server_cpu_us'):.0f} | {per_round} | "
            f"{sum(r.non200 + r.socket_errors for r in rs)} |"
        )
    return lines


def ratio_rows(runs: Sequence[Run], groups: dict[str, list[Run]]) -> list[str]:
    """ours/bare and ours/wechatpy: of the median req/s, per round, and of server CPU."""
    rps = {name: _median(rs, "rps") for name, rs in groups.items()}
    cpu = {name: _median(rs, "server_cpu_us") for name, rs in groups.items()}
    lines = [
        "| ratio | req/s, of medians | req/s, per round | target | met | CPU/req, other/ours |",
        "|---|---:|---|---:|---|---:|",
    ]
    for other, goal in TARGET_RATIOS.items():
        ratio = rps["ours"] / rps[other] if other in rps else 0.0
        per_round = " / ".join(f"{x:.2f}" for x in round_ratios(runs, other))
        met = "yes" if ratio >= goal else "**no**"
        if other not in rps:
            continue
        lines.append(
            f"| ours/{other} | {ratio:.2f} | {per_round} | >= {goal:.2f} | {met} | "
            f"{cpu[other] / cpu['ours']:.2f} |"
        )
    return lines


def code_version() -> str:
    """The commit under test, flagged when callback/ or wsgi.py have local changes."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "callback", "wsgi.py")
    return f"{commit} (with uncommitted changes)" if dirty else commit


def report(runs: Sequence[Run], args: argparse.Namespace, started: datetime, code: str) -> str:
    """The markdown report: settings, machine, per-target medians and the ratios."""
    groups = by_target(runs)
    load = f"{args.requests} requests" if args.requests else f"{args.seconds} s"
    wrk_share = statistics.median(r.wrk_cpu_share for r in runs)
    lines = [
        f"Callback throughput, {started:%Y-%m-%d %H:%M} UTC: {args.rounds} rounds "
        f"(bare, ours, wechatpy), {load} per run, wrk -t{args.threads} -c{args.connections} "
        f"(median {wrk_share:.0%} of a core), gunicorn -w 2 (ours: "
        f"{args.ours_worker or 'ThreadWorker x 32 threads, as `wecom serve` runs it'}; "
        "the others sync, and wechatpy-gthread x 32)"
        f"{f', ours with state = {args.state}' if args.state else ''}.",
        "",
        f"Machine: {environment_line()}. Code: {code}.",
        "",
        *target_rows(groups),
        "",
        *ratio_rows(runs, groups),
    ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each run")
    parser.add_argument("--requests", type=int, default=0, help="requests per run instead")
    parser.add_argument("--rounds", type=int, default=3, help="bare/ours/wechatpy repeats")
    parser.add_argument("--connections", type=int, default=8, help="wrk concurrency")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--sample", type=int, default=60, help="requests checked per run")
    parser.add_argument(
        "--state", help="ours: [server] state URL instead of the default (e.g. memory://)"
    )
    parser.add_argument(
        "--ours-worker",
        help="ours and ours-no-inbox: this gunicorn worker class (1 thread) instead of the shipped "
        "ThreadWorker x 32 (e.g. sync: what the threads cost)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep each run's directory (logs, pool, state)"
    )
    parser.add_argument(
        "--pool-rate", type=int, default=6000, help="req/s to provision for a target's first run"
    )
    names = [t.name for t in TARGETS]
    parser.add_argument(
        "--targets", default=",".join(names), help=f"comma-separated, of {', '.join(names)}"
    )
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be >= --threads")
    return args


def rounds(args: argparse.Namespace) -> Iterator[tuple[int, Target]]:
    """(round, target) in run order: bare, ours, wechatpy, repeated."""
    chosen = args.targets.split(",")
    for n in range(1, args.rounds + 1):
        for target in TARGETS:
            if target.name in chosen:
                if args.ours_worker and target.name.startswith("ours"):
                    target = replace(target, worker=args.ours_worker, threads=1)
                yield n, target


def run_all(args: argparse.Namespace) -> list[Run]:
    """Every round in a fresh temporary directory (kept with --keep); the runs in order."""
    creds = Credentials.random()
    sim = Simulator.create(
        creds.token, creds.encoding_aes_key, creds.corp_id, agent_id=creds.agent_id
    )
    runs: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="wecom-bench-"))
    try:
        env = server_env(write_config(workdir, creds, args.state), creds)
        ctx = BenchContext(args, workdir, env, sim, Mix(sim))
        for round_no, target in rounds(args):
            best = max((r.rps for r in runs if r.target == target.name), default=None)
            runs.append(bench_target(target, round_no, ctx, best))
    finally:
        if args.keep:
            print(f"run directories kept under {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print and save the report; 1 if any answer was wrong."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    started, code_before = datetime.now(UTC), code_version()
    runs = run_all(args)
    code_after = code_version()
    code = code_before if code_after == code_before else f"{code_before}, then {code_after}"
    text = report(runs, args, started, code)
    print("\n" + text)
    OUT.mkdir(exist_ok=True)
    (OUT / "latest.md").write_text(text, encoding="utf-8")
    failed = sum(r.non200 + r.socket_errors + (r.empty if r.target != "bare" else 0) for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
