"""Send throughput: messages per second through WecomClient.send to the WeCom emulator.

    python bench/send_throughput.py [--messages 1500] [--threads 8] [--processes 4] [--rounds 3]

The emulator (`python -m callback.devtools.emulator --quiet`) runs in its own process on a free
127.0.0.1 port. Each run starts 1 or --processes sending processes (bench/_send_worker.py), each
with its own WecomClient on one shared state store, and --threads threads per process; all are
released at once and send --messages text messages between them, every one to a distinct user
(the client refuses a 31st message a minute to one member). Every run has fresh state (a new
SQLite file, its schema created by the driver first, or a new key prefix in a private
redis-server), so its first sends race for the access token: `gettoken` (from
GET /_emulator/stats) must be exactly 1 per run.

Scenarios, in this order in every round: `raw` (the same bodies POSTed with requests and one
token: the emulator's and HTTP's share, no client), `sqlite`, then `redis` (if redis-server and
the redis package are installed), first with one process, then with --processes.

Prints a markdown report (messages/s, p50/p99 latency per send, gettoken, CPU per message) and
writes it to bench/out/send.md. Exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _common as common

sys.path.insert(0, str(common.ROOT))

from callback.devtools.emulator import DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_SECRET
from callback.store import open_store

WORKER = common.BENCH / "_send_worker.py"


@dataclass(frozen=True)
class Scenario:
    """One configuration: how the messages are sent, on which store, by how many processes."""

    mode: str  # "client" | "raw"
    backend: str  # "sqlite" | "redis" | "-" (raw: no store)
    processes: int
    threads: int

    @property
    def name(self) -> str:
        store = "raw (no client)" if self.mode == "raw" else self.backend
        return f"{store}, {self.processes} × {self.threads}"


@dataclass
class Result:
    """What one run measured, and what its checks found."""

    scenario: Scenario
    round: int
    messages: int
    seconds: float
    latencies_ms: list[float]
    gettoken: int
    accepted: int  # message/send records at the emulator
    dropped: int  # members over the emulator's per-member rate limit
    client_cpu_s: float
    emulator_cpu_s: float
    redis_cpu_s: float
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class Bench:
    """What every run shares: the arguments, the temp dir, the emulator and maybe Redis."""

    args: argparse.Namespace
    workdir: Path
    emulator: common.EmulatorProcess
    redis_url: str | None = None
    redis_pid: int | None = None


# -- one run ------------------------------------------------------------------------------------


def fetch_token(api: str) -> str:
    """gettoken once, for the raw scenario (which must also make exactly one call)."""
    query = urlencode({"corpid": DEFAULT_CORP_ID, "corpsecret": DEFAULT_SECRET})
    data = common.http_json(f"{api}/cgi-bin/gettoken?{query}")
    return str(data["access_token"])


def state_url(bench: Bench, scenario: Scenario, run_no: int) -> str:
    """A fresh state store for the run: a new SQLite file or a new Redis key prefix."""
    if scenario.mode == "raw":
        return "memory://"
    if scenario.backend == "sqlite":
        return f"sqlite:///{bench.workdir / f'state-{run_no}.db'}"
    assert bench.redis_url is not None
    return f"{bench.redis_url}?prefix=bench{run_no}:"


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal shares."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def start_workers(
    bench: Bench,
    scenario: Scenario,
    run_no: int,
    token: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """Start the sending processes (into `procs`, which the caller stops) and wait until each
    has printed `ready`."""
    base = {
        "mode": scenario.mode,
        "api": bench.emulator.url,
        "state": state_url(bench, scenario, run_no),
        "corp_id": DEFAULT_CORP_ID,
        "agent_id": DEFAULT_AGENT_ID,
        "secret": DEFAULT_SECRET,
        "token": token,
        "threads": scenario.threads,
    }
    if scenario.backend == "sqlite":
        # Create the file's schema (and WAL mode) first, as a deployed server's first start
        # does: processes opening a brand-new file at the same instant can fail with
        # "database is locked" (PRAGMA journal_mode=WAL), which is not what is measured here.
        open_store(str(base["state"])).close()
    log = bench.workdir / f"workers-{run_no}.log"
    for n, share in enumerate(split(bench.args.messages, scenario.processes)):
        spec = base | {"messages": share, "prefix": f"r{run_no}p{n}"}
        with log.open("ab") as err:
            procs.append(
                common.spawn(
                    [sys.executable, str(WORKER), json.dumps(spec)],
                    cwd=bench.workdir,
                    env=common.child_env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                )
            )
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"a send worker did not start:\n{tail}")


def run_once(bench: Bench, scenario: Scenario, round_no: int, run_no: int) -> Result:
    """Reset the emulator, start the processes, release them together, collect and check."""
    bench.emulator.reset()
    token = fetch_token(bench.emulator.url) if scenario.mode == "raw" else ""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start_workers(bench, scenario, run_no, token, procs)
        emulator_before = bench.emulator.cpu_seconds()
        redis_before = common.process_cpu_seconds(bench.redis_pid) if bench.redis_pid else 0.0
        for proc in procs:  # go
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        reports = []
        for proc in procs:
            out, _ = proc.communicate(timeout=600)
            reports.append(json.loads(out.splitlines()[-1]))
        emulator_cpu = bench.emulator.cpu_seconds() - emulator_before
        redis_cpu = (
            common.process_cpu_seconds(bench.redis_pid) - redis_before if bench.redis_pid else 0.0
        )
    finally:
        for proc in procs:
            common.stop(proc)
    stats = bench.emulator.stats()
    latencies = [x for r in reports for x in r["latencies_ms"]]
    result = Result(
        scenario=scenario,
        round=round_no,
        messages=len(latencies),
        seconds=max(r["end"] for r in reports) - min(r["start"] for r in reports),
        latencies_ms=latencies,
        gettoken=sum(int(n) for n in stats["gettoken"].values()),
        accepted=int(stats["messages"]),
        dropped=int(stats["dropped"]),
        client_cpu_s=sum(r["cpu_s"] for r in reports),
        emulator_cpu_s=emulator_cpu,
        redis_cpu_s=redis_cpu,
    )
    errors = sum(r["error_count"] for r in reports)
    if errors:
        first = next(e for r in reports for e in r["errors"])
        result.problems.append(f"{errors} sends failed, e.g. {first}")
    if result.gettoken != 1:
        result.problems.append(f"gettoken was called {result.gettoken} times, not once")
    if result.accepted != bench.args.messages or result.dropped:
        result.problems.append(
            f"the emulator accepted {result.accepted} of {bench.args.messages} messages "
            f"({result.dropped} dropped)"
        )
    return result


def describe(result: Result) -> str:
    """One progress line."""
    lat = result.latencies_ms
    flag = f"  PROBLEMS: {'; '.join(result.problems)}" if result.problems else ""
    return (
        f"round {result.round} {result.scenario.name:>22}: {result.rate:7.1f} msg/s  "
        f"p50 {common.percentile(lat, 50):6.2f} ms  p99 {common.percentile(lat, 99):7.2f} ms  "
        f"n={result.messages} gettoken={result.gettoken} "
        f"client CPU {result.client_cpu_s / max(result.messages, 1) * 1e6:.0f} us/msg{flag}"
    )


# -- report -------------------------------------------------------------------------------------


def grouped(results: Sequence[Result]) -> dict[Scenario, list[Result]]:
    """Results by scenario, in run order."""
    groups: dict[Scenario, list[Result]] = {}
    for r in results:
        groups.setdefault(r.scenario, []).append(r)
    return groups


def _per_msg_us(rs: Sequence[Result], attr: str) -> float:
    """Median over rounds of a CPU-seconds field per message, in microseconds."""
    return statistics.median(float(getattr(r, attr)) / r.messages * 1e6 for r in rs)


def table(results: Sequence[Result]) -> list[str]:
    """Per scenario: median msg/s over rounds, pooled latency percentiles, checks, CPU."""
    lines = [
        "| scenario (processes × threads) | msg/s (median) | msg/s per round | p50 ms | p99 ms "
        "| gettoken per run | accepted / sent | client CPU us/msg | emulator CPU us/msg "
        "| redis CPU us/msg |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, rs in grouped(results).items():
        lat = [x for r in rs for x in r.latencies_ms]
        redis = f"{_per_msg_us(rs, 'redis_cpu_s'):.0f}" if scenario.backend == "redis" else "-"
        lines.append(
            f"| {scenario.name} | {statistics.median(r.rate for r in rs):.0f} "
            f"| {' / '.join(f'{r.rate:.0f}' for r in rs)} "
            f"| {common.percentile(lat, 50):.2f} | {common.percentile(lat, 99):.2f} "
            f"| {' / '.join(str(r.gettoken) for r in rs)} "
            f"| {sum(r.accepted for r in rs)} / {sum(r.messages for r in rs)} "
            f"| {_per_msg_us(rs, 'client_cpu_s'):.0f} | {_per_msg_us(rs, 'emulator_cpu_s'):.0f} "
            f"| {redis} |"
        )
    return lines


def ratio(results: Sequence[Result], top: Scenario, bottom: Scenario) -> str:
    """top/bottom msg/s within each round, then of the medians."""
    rate = {(r.scenario, r.round): r.rate for r in results}
    rounds = sorted({r.round for r in results})
    each = [rate[top, n] / rate[bottom, n] for n in rounds if (top, n) in rate]
    medians = {
        s: statistics.median(r.rate for r in rs)
        for s, rs in grouped(results).items()
        if s in (top, bottom)
    }
    return f"{medians[top] / medians[bottom]:.2f} ({' / '.join(f'{x:.2f}' for x in each)})"


def ratio_table(results: Sequence[Result], scenarios: Sequence[Scenario]) -> list[str]:
    """The ratios that matter, each measured within one invocation (and within each round)."""
    by = {(s.mode, s.backend, s.processes): s for s in scenarios}
    one, many = 1, max(s.processes for s in scenarios)
    pairs: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = []
    for backend in ("sqlite", "redis"):
        if ("client", backend, one) in by:
            pairs += [
                (f"{backend}: {many} processes / 1", ("client", backend, many),
                 ("client", backend, one)),
                (f"{backend} / raw, 1 process", ("client", backend, one), ("raw", "-", one)),
                (f"{backend} / raw, {many} processes", ("client", backend, many),
                 ("raw", "-", many)),
            ]  # fmt: skip
    if ("client", "redis", one) in by:
        pairs += [
            ("redis / sqlite, 1 process", ("client", "redis", one), ("client", "sqlite", one)),
            (f"redis / sqlite, {many} processes", ("client", "redis", many),
             ("client", "sqlite", many)),
        ]  # fmt: skip
    pairs.append((f"raw: {many} processes / 1", ("raw", "-", many), ("raw", "-", one)))
    lines = ["| ratio of msg/s | of medians (per round) |", "|---|---|"]
    for label, top, bottom in pairs:
        if top in by and bottom in by:  # --no-raw / --no-redis leave some out
            lines.append(f"| {label} | {ratio(results, by[top], by[bottom])} |")
    return lines


def overhead_table(results: Sequence[Result]) -> list[str]:
    """What the client itself costs: its CPU per message over the raw baseline's (same process
    count), which noisy neighbours move much less than msg/s."""
    groups = grouped(results)
    raw = {
        s.processes: _per_msg_us(rs, "client_cpu_s") for s, rs in groups.items() if s.mode == "raw"
    }
    lines = [
        "| scenario | client CPU us/msg | over raw (same processes) | client / raw |",
        "|---|---:|---:|---:|",
    ]
    for scenario, rs in groups.items():
        if scenario.mode == "raw" or scenario.processes not in raw:
            continue
        cpu, base = _per_msg_us(rs, "client_cpu_s"), raw[scenario.processes]
        lines.append(f"| {scenario.name} | {cpu:.0f} | +{cpu - base:.0f} | {cpu / base:.2f} |")
    return lines if len(lines) > 2 else []


def redis_server_version() -> str:
    """`redis-server X.Y.Z` from `redis-server --version`, or "" if it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return ""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    found = next((w[2:] for w in out.split() if w.startswith("v=")), "?")
    return f", redis-server {found}"


def report(
    results: Sequence[Result],
    scenarios: Sequence[Scenario],
    args: argparse.Namespace,
    started: datetime,
    redis_note: str,
) -> str:
    """The markdown report."""
    lines = [
        f"Send throughput, {started:%Y-%m-%d %H:%M} UTC: {args.messages} text messages per run "
        f"(each to a distinct user), {args.rounds} round(s), WecomClient.send to the WeCom "
        f"emulator in its own process; fresh state store per run{redis_note}.",
        "",
        f"Machine: {common.environment_line(['requests', 'Flask', 'Werkzeug', 'redis'])}"
        f"{redis_server_version() if any(s.backend == 'redis' for s in scenarios) else ''}. "
        f"Code: {common.code_version()}.",
        "",
        *table(results),
        "",
        *ratio_table(results, scenarios),
        "",
        *overhead_table(results),
    ]
    problems = [f"- round {r.round}, {r.scenario.name}: {p}" for r in results for p in r.problems]
    if problems:
        lines += ["", "**Failed checks:**", "", *problems]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--messages", type=int, default=1500, help="messages per run")
    parser.add_argument("--threads", type=int, default=8, help="sending threads per process")
    parser.add_argument("--processes", type=int, default=4, help="processes of the multi runs")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of every scenario")
    parser.add_argument("--no-redis", action="store_true", help="skip the redis:// scenarios")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw (no client) baseline")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, state)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.threads < 1 or args.processes < 2 or args.rounds < 1:
        parser.error("--messages, --threads, --rounds must be >= 1 and --processes >= 2")
    return args


def redis_available(args: argparse.Namespace) -> tuple[bool, str]:
    """Whether the redis scenarios run, and why not."""
    if args.no_redis:
        return False, "; redis skipped (--no-redis)"
    if shutil.which("redis-server") is None:
        return False, "; redis skipped: redis-server is not installed"
    try:
        import redis  # noqa: F401
    except ImportError:
        return False, "; redis skipped: the redis package is not installed"
    return True, ""


def scenarios_for(args: argparse.Namespace, with_redis: bool) -> list[Scenario]:
    """Run order within a round: every backend with 1 process, then with --processes."""
    backends = [("raw", "-")] * (not args.no_raw) + [("client", "sqlite")]
    backends += [("client", "redis")] * with_redis
    return [
        Scenario(mode, backend, processes, args.threads)
        for processes in (1, args.processes)
        for mode, backend in backends
    ]


def runs(scenarios: Sequence[Scenario], rounds: int) -> Iterator[tuple[int, Scenario]]:
    for n in range(1, rounds + 1):
        for scenario in scenarios:
            yield n, scenario


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario, print and save the report; 1 if a check failed."""
    args = parse_args(argv)
    common.sigterm_as_interrupt()
    with_redis, redis_note = redis_available(args)
    scenarios = scenarios_for(args, with_redis)
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="wecom-send-bench-"))
    results: list[Result] = []
    emulator: common.EmulatorProcess | None = None
    redis_server: Any = None
    try:
        emulator = common.EmulatorProcess(workdir)
        bench = Bench(args, workdir, emulator)
        if with_redis:
            from tests.redis_server import RedisServer

            redis_server = RedisServer(workdir, shutil.which("redis-server") or "redis-server")
            redis_server.start()  # --save "" --appendonly no, on a free port
            bench.redis_url, bench.redis_pid = redis_server.url, redis_server.proc.pid
        for run_no, (round_no, scenario) in enumerate(runs(scenarios, args.rounds)):
            result = run_once(bench, scenario, round_no, run_no)
            print(describe(result), flush=True)
            results.append(result)
            time.sleep(0.5)  # let the last run's sockets and processes go
    finally:
        if emulator is not None:
            emulator.stop()
        if redis_server is not None:
            redis_server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, scenarios, args, started, redis_note)
    print("\n" + text)
    print(f"written to {common.write_report('send.md', text)}")
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # every child was stopped on the way out
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
