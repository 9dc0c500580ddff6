"""Callback throughput of two servers sharing Redis against one server on SQLite, in one go.

    python bench/scaleout_throughput.py [--seconds 10] [--rounds 3] [--no-celery] [--control]

Every round runs each deployment on 127.0.0.1, started fresh (empty state) and stopped after:

- `sqlite-1host`: one `gunicorn -w 2 -k sync wsgi:app`, `state = "sqlite:///..."`, embedded queue;
- `redis-2hosts`: two such servers (two ports: the two "hosts") sharing one private
  redis-server, `state = "redis://..."`, embedded queue as on the SQLite host;
- `redis-2hosts-celery` (unless --no-celery): the same with `queue = "celery"` and one Celery
  worker (`celery -A callback.worker worker -Q wecom`) on the same Redis;
- `redis-1host` (with --control): one host on Redis, the SQLite host's topology, so that the
  store's cost can be told apart from that of running four workers instead of two.

The request mix is bench/callback_throughput.py's (1/3 text `echo mN`, 1/3 menu click, 1/3
template-card button; passive, encrypted replies; distinct messages), built by its `Mix` right
before each run. The load is always two wrk processes (-t1, half of --connections each), started
together, each replaying its own half of the pool through bench/replay.lua: to the two hosts,
or both to the one host, so that the client side is the same in every deployment. Every
request is sent once overall. Checks: a sample of fresh requests, spread over the hosts, must
get status 200 and the right decrypted reply; wrk counts non-200 answers and empty bodies; after
the run the store must hold one finished inbox record per answered request (for Redis: both
hosts' records in the one shared store).

Prints a markdown report (per deployment: total req/s, p50, p99, server CPU per request with
redis-server's part, non-200; redis/sqlite ratios per round) and writes it to
bench/out/scaleout.md. On a 2-core machine two hosts cannot be faster than one: the ratio shows
what the Redis state store costs per callback relative to SQLite, not a scale-out speed-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from callback_throughput import (
    APP_NAME,
    BENCH,
    OUT,
    ROOT,
    Credentials,
    Mix,
    Request,
    check_reply,
    code_version,
    environment_line,
    free_port,
    http_call,
    process_cpu_seconds,
    server_env,
    tree_cpu_seconds,
    write_pool,
)

from callback.devtools.simulator import Simulator

OTHER_BENCHMARKS = r"bench/(callback_throughput|send_throughput|answer_time|scaleout_throughput)"
REDIS_PREFIX = "wecom:"  # RedisStore's default key prefix

# replay.lua, plus its latency distribution (1000 quantiles) so that the two wrk processes'
# latencies can be merged into one p50/p99.
QUANTILES_LUA = """\
dofile(os.getenv("BENCH_REPLAY"))
local replay_done = done
function done(summary, latency, requests)
   replay_done(summary, latency, requests)
   local q = {}
   for i = 1, 1000 do
      q[i] = string.format("%d", latency:percentile(i / 10))
   end
   io.write('{"quantiles_us": [' .. table.concat(q, ",") .. ']}\\n')
end
"""


@dataclass(frozen=True, slots=True)
class Setup:
    """One deployment under test."""

    name: str
    hosts: int
    redis: bool
    celery: bool = False


SQLITE = Setup("sqlite-1host", hosts=1, redis=False)
REDIS = Setup("redis-2hosts", hosts=2, redis=True)
CELERY = Setup("redis-2hosts-celery", hosts=2, redis=True, celery=True)
CONTROL = Setup("redis-1host", hosts=1, redis=True)  # --control: Redis with sqlite's topology


@dataclass(slots=True)
class Run:
    """One run of one deployment: both wrk processes together."""

    setup: str
    round: int
    answered: int
    seconds: float
    rps: float
    host_rps: list[float]
    p50_ms: float
    p99_ms: float
    non200: int
    empty: int
    socket_errors: int
    exhausted: bool
    server_cpu_us: float  # gunicorn (masters + workers), redis-server, Celery worker, per answer
    redis_cpu_us: float  # redis-server's part of it
    server_cores: float  # all server CPU time / wall time (1.0 = one core busy)
    wrk_cpu_share: float  # both wrk processes' CPU time / wall time (1.0 = one core)
    other_cores: float = 0.0  # the rest of the machine's busy time (and steal), in cores
    store_problem: str | None = None
    stored: int = 0

    @property
    def failures(self) -> int:
        bad_store = 1 if self.store_problem else 0
        return self.non200 + self.empty + self.socket_errors + bad_store


# -- processes ----------------------------------------------------------------------------------


def spawn(
    command: Sequence[str], log: Path, cwd: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session, so that `stop` reaches its children (gunicorn and
    Celery workers) and a Ctrl-C in the terminal reaches only us."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after 15 s; also SIGKILL any straggler of the group."""
    with contextlib.suppress(ProcessLookupError):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def redis_ping(port: int) -> bool:
    """True when a Redis answers PING on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Deployment:
    """A setup's processes in `rundir`: redis-server, Celery worker, gunicorn hosts. Used as a
    context manager; every process started is stopped on exit, whatever happened."""

    def __init__(self, setup: Setup, rundir: Path, creds: Credentials) -> None:
        self.setup = setup
        self.rundir = rundir
        self.creds = creds
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis: subprocess.Popen[bytes] | None = None
        self.redis_url = ""
        self.ports: list[int] = []
        self.roots: list[int] = []  # pids whose process trees are "the server"

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in reversed(self.procs):  # hosts, then the worker, then Redis
            stop(proc)

    def start(self) -> None:
        env = server_env(self.config(), self.creds) | {"PYTHONPATH": str(ROOT)}
        if self.setup.redis:
            self.start_redis(env)
        if self.setup.celery:
            self.start_celery(env)
        for host in range(self.setup.hosts):
            self.start_host(host, env)

    def config(self) -> Path:
        """config.toml: the one benchmark app; state (and queue) per setup, the rest default."""
        if self.setup.redis:
            port = free_port()
            self.redis_url = f"redis://127.0.0.1:{port}/0"
            state = self.redis_url
        else:
            state = f"sqlite:///{self.rundir / 'wecom-state.db'}"  # sqlite:////abs/path
        queue = 'queue = "celery"\n' if self.setup.celery else ""
        path = self.rundir / "config.toml"
        c = self.creds
        path.write_text(
            f'[apps.{APP_NAME}]\ncorp_id = "{c.corp_id}"\nagent_id = {c.agent_id}\n'
            f'token = "{c.token}"\nencoding_aes_key = "{c.encoding_aes_key}"\n'
            f'\n[server]\nstate = "{state}"\n{queue}',
            encoding="utf-8",
        )
        return path

    def start_redis(self, env: dict[str, str]) -> None:
        port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0])
        command = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.rundir),
        ]  # fmt: skip
        self.redis = spawn(command, self.rundir / "redis.log", self.rundir, env)
        self.procs.append(self.redis)
        self.roots.append(self.redis.pid)
        deadline = time.monotonic() + 15
        while not redis_ping(port):
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not start:\n{tail(self.rundir / 'redis.log')}"
                )
            time.sleep(0.05)

    def start_celery(self, env: dict[str, str]) -> None:
        log = self.rundir / "celery.log"
        command = [
            sys.executable, "-m", "celery", "-A", "callback.worker", "worker", "-Q", "wecom",
            "--concurrency", "2", "--loglevel", "info", "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
        proc = spawn(command, log, self.rundir, env)
        self.procs.append(proc)
        self.roots.append(proc.pid)
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{tail(log)}")
            time.sleep(0.2)

    def start_host(self, host: int, env: dict[str, str]) -> None:
        port = free_port()
        log = self.rundir / f"gunicorn-{host}.log"
        command = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--worker-class", "sync", "--pythonpath", str(ROOT),
            "--log-level", "warning", "wsgi:app",
        ]  # fmt: skip
        proc = spawn(command, log, self.rundir, env)
        self.procs.append(proc)
        self.roots.append(proc.pid)
        self.ports.append(port)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if http_call(port, "GET", "/healthz")[0] == 200:
                    return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.setup.name} host {host} did not start:\n{tail(log)}")
            time.sleep(0.1)

    def cpu_seconds(self) -> tuple[float, float]:
        """(CPU seconds of every server process tree so far, redis-server's part)."""
        total = sum(tree_cpu_seconds(pid) for pid in self.roots)
        redis = process_cpu_seconds(self.redis.pid) if self.redis is not None else 0.0
        return total, redis

    def finished_records(self) -> tuple[int, int]:
        """(finished, running) inbox records in the state store."""
        if self.setup.redis:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            try:
                done = client.zcard(f"{REDIS_PREFIX}inbox-done")
                running = client.zcard(f"{REDIS_PREFIX}inbox-running")
                return int(done), int(running)
            finally:
                client.close()
        with contextlib.closing(sqlite3.connect(self.rundir / "wecom-state.db")) as db:
            rows = dict(db.execute("SELECT state, count(*) FROM inbox GROUP BY state").fetchall())
        return int(rows.get("done", 0)), sum(n for s, n in rows.items() if s != "done")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (everything but idle and iowait), and
    stolen by the hypervisor, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


# -- checks and load ----------------------------------------------------------------------------


def validate(deployment: Deployment, sim: Simulator, sample: Sequence[Request]) -> None:
    """Send `sample` one by one, round-robin over the hosts (also a warm-up of every worker);
    every answer must be 200 and the right passive reply."""
    for i, req in enumerate(sample):
        port = deployment.ports[i % len(deployment.ports)]
        status, body = http_call(port, "POST", req.path, req.body)
        problem = (
            f"status {status}: {body[:200]!r}" if status != 200 else check_reply(sim, req, body)
        )
        if problem:
            raise RuntimeError(f"{deployment.setup.name} port {port}: {req.path}: {problem}")


def merged_quantile(parts: Sequence[tuple[int, Sequence[int]]], q: float) -> float:
    """Quantile `q` (0..1) of the mixture of latency distributions, each given as (weight,
    its 1000 quantiles at 0.1 % steps); microseconds."""
    points = sorted(
        (value, weight / len(quantiles)) for weight, quantiles in parts for value in quantiles
    )
    total = sum(w for _, w in points)
    cumulative = 0.0
    for value, w in points:
        cumulative += w
        if cumulative >= q * total - 1e-9:
            return float(value)
    return float(points[-1][0])


@dataclass
class Context:
    """What every run shares."""

    args: argparse.Namespace
    workdir: Path
    creds: Credentials
    sim: Simulator
    mix: Mix
    lua: Path
    best: dict[str, float] = field(default_factory=dict)


def run_wrks(deployment: Deployment, pools: Sequence[Path], ctx: Context) -> list[dict[str, Any]]:
    """Two wrk processes started together, each with half the connections and its own pool,
    to host i % hosts; each one's replay.lua summary plus its latency quantiles."""
    half = ctx.args.connections // 2
    procs = []
    for i, pool in enumerate(pools):
        port = deployment.ports[i % len(deployment.ports)]
        command = [
            "wrk", "-t", "1", "-c", str(half), "-d", f"{ctx.args.seconds}s", "--timeout", "10s",
            "-s", str(ctx.lua), f"http://127.0.0.1:{port}",
        ]  # fmt: skip
        env = os.environ | {
            "BENCH_POOL": str(pool),
            "BENCH_THREADS": "1",
            "BENCH_LIMIT": "0",
            "BENCH_REPLAY": str(BENCH / "replay.lua"),
        }
        procs.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=ctx.args.seconds + 120)
            summary: dict[str, Any] = {}
            for line in out.decode().splitlines():
                if line.startswith("{"):
                    summary |= json.loads(line)
            if proc.returncode != 0 or "answered" not in summary or "quantiles_us" not in summary:
                raise RuntimeError(
                    f"wrk failed ({proc.returncode}):\n{out.decode()}\n{err.decode()}"
                )
            results.append(summary)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def bench_setup(setup: Setup, round_no: int, ctx: Context) -> Run:
    """Start the deployment, check a sample, build and split a fresh pool, run the two wrk
    processes, check the store, stop everything."""
    rundir = ctx.workdir / f"round{round_no}-{setup.name}"
    rundir.mkdir()
    args = ctx.args
    try:
        with Deployment(setup, rundir, ctx.creds) as deployment:
            validate(deployment, ctx.sim, ctx.mix.take(args.sample))
            best = ctx.best.get(setup.name)
            size = max(2000, int((2 * best if best else args.pool_rate) * args.seconds))
            requests = ctx.mix.take(size)
            pools = [rundir / "pool-a.txt", rundir / "pool-b.txt"]
            for i, pool in enumerate(pools):
                write_pool(pool, requests[i::2])  # each request in exactly one half
            cpu_before, redis_before = deployment.cpu_seconds()
            wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            busy_before = machine_busy_seconds()
            results = run_wrks(deployment, pools, ctx)
            busy_after = machine_busy_seconds()
            wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_after, redis_after = deployment.cpu_seconds()
            run = make_run(setup, round_no, results, cpu_after - cpu_before)
            run.redis_cpu_us = (redis_after - redis_before) / max(run.answered, 1) * 1e6
            wrk_cpu = (wrk_after.ru_utime - wrk_before.ru_utime) + (
                wrk_after.ru_stime - wrk_before.ru_stime
            )
            run.wrk_cpu_share = wrk_cpu / run.seconds
            others = (busy_after - busy_before) - (cpu_after - cpu_before) - wrk_cpu
            run.other_cores = max(others, 0.0) / run.seconds
            check_store(deployment, run, args)
    finally:
        if not args.keep:
            shutil.rmtree(rundir, ignore_errors=True)
    ctx.best[setup.name] = max(run.rps, ctx.best.get(setup.name, 0.0))
    flag = "  POOL RAN OUT (run ended early)" if run.exhausted else ""
    store = f"  STORE: {run.store_problem}" if run.store_problem else ""
    print(
        f"round {round_no} {setup.name:>19}: {run.rps:7.1f} req/s "
        f"({' + '.join(f'{r:.0f}' for r in run.host_rps)})  p50 {run.p50_ms:6.2f} ms  "
        f"p99 {run.p99_ms:6.2f} ms  n={run.answered} non200={run.non200} empty={run.empty} "
        f"sockerr={run.socket_errors} stored={run.stored} server CPU {run.server_cpu_us:.0f} "
        f"us/req (redis {run.redis_cpu_us:.0f}), {run.server_cores:.2f} cores; "
        f"wrk {run.wrk_cpu_share:.0%} of a core; others {run.other_cores:.2f} cores{flag}{store}",
        flush=True,
    )
    return run


def make_run(setup: Setup, round_no: int, results: Sequence[dict[str, Any]], cpu: float) -> Run:
    """One Run from the two wrk summaries: rates add up, latencies are merged."""
    answered = sum(int(r["answered"]) for r in results)
    seconds = max(r["duration_us"] for r in results) / 1e6
    host_rps = [r["answered"] / (r["duration_us"] / 1e6) for r in results]
    if setup.hosts == 1:
        host_rps = [sum(host_rps)]
    parts = [(int(r["answered"]), r["quantiles_us"]) for r in results]
    return Run(
        setup=setup.name,
        round=round_no,
        answered=answered,
        seconds=seconds,
        rps=sum(r["answered"] / (r["duration_us"] / 1e6) for r in results),
        host_rps=host_rps,
        p50_ms=merged_quantile(parts, 0.50) / 1000,
        p99_ms=merged_quantile(parts, 0.99) / 1000,
        non200=sum(int(r["non200"]) for r in results),
        empty=sum(int(r["empty"]) for r in results),
        socket_errors=sum(int(r["socket_errors"]) for r in results),
        exhausted=any(bool(r["exhausted"]) for r in results),
        server_cpu_us=cpu / max(answered, 1) * 1e6,
        redis_cpu_us=0.0,
        server_cores=cpu / seconds,
        wrk_cpu_share=0.0,
    )


def check_store(deployment: Deployment, run: Run, args: argparse.Namespace) -> None:
    """One finished inbox record per callback: the sample, every answered request, and at most
    one in-flight request per connection that wrk stopped waiting for."""
    expected = args.sample + run.answered
    deadline = time.monotonic() + 5
    while True:
        done, running = deployment.finished_records()
        if running == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    run.stored = done
    if running or not expected <= done <= expected + args.connections:
        run.store_problem = (
            f"{done} finished and {running} running inbox records; expected {expected} "
            f"(sample + answered) to {expected + args.connections} finished"
        )


# -- report -------------------------------------------------------------------------------------


def _median(runs: Sequence[Run], attr: str) -> float:
    return statistics.median(float(getattr(r, attr)) for r in runs)


def setup_rows(groups: dict[str, list[Run]]) -> list[str]:
    lines = [
        "| deployment | req/s (median) | p50 ms | p99 ms | server CPU us/req | of which "
        "redis-server | server cores busy | other load, cores | req/s per round (per host) "
        "| non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, rs in groups.items():
        per_round = " / ".join(
            f"{r.rps:.0f}"
            + (f" ({' + '.join(f'{h:.0f}' for h in r.host_rps)})" if len(r.host_rps) > 1 else "")
            for r in rs
        )
        redis = f"{_median(rs, 'redis_cpu_us'):.0f}" if name != SQLITE.name else "-"
        lines.append(
            f"| {name} | {_median(rs, 'rps'):.0f} | {_median(rs, 'p50_ms'):.2f} | "
            f"{_median(rs, 'p99_ms'):.2f} | {_median(rs, 'server_cpu_us'):.0f} | {redis} | "
            f"{_median(rs, 'server_cores'):.2f} | {_median(rs, 'other_cores'):.2f} | "
            f"{per_round} | {sum(r.non200 + r.socket_errors for r in rs)} |"
        )
    return lines


def ratio_rows(groups: dict[str, list[Run]]) -> list[str]:
    lines = [
        "| ratio | req/s, per round | req/s, of medians | server CPU/req, per round |",
        "|---|---|---:|---|",
    ]
    base = {r.round: r for r in groups[SQLITE.name]}
    for name, rs in groups.items():
        if name == SQLITE.name:
            continue
        rps = " / ".join(f"{r.rps / base[r.round].rps:.2f}" for r in rs)
        cpu = " / ".join(f"{r.server_cpu_us / base[r.round].server_cpu_us:.2f}" for r in rs)
        of_medians = _median(rs, "rps") / _median(groups[SQLITE.name], "rps")
        lines.append(f"| {name} / {SQLITE.name} | {rps} | {of_medians:.2f} | {cpu} |")
    return lines


def report(
    runs: Sequence[Run], setups: Sequence[Setup], args: argparse.Namespace, started: datetime,
    code: str,
) -> str:  # fmt: skip
    groups = {s.name: [r for r in runs if r.setup == s.name] for s in setups}
    wrk_share = statistics.median(r.wrk_cpu_share for r in runs)
    celery = " and the Celery worker" if CELERY in setups else ""
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()
    redis_v = next((w.split("=")[1] for w in redis_version if w.startswith("v=")), "?")
    lines = [
        f"Scale-out callback throughput, {started:%Y-%m-%d %H:%M} UTC, code {code}: "
        f"{args.rounds} rounds (order reversed every other round), {args.seconds} s per run. "
        f"Load: two wrk -t1 -c{args.connections // 2} started together, each with half of one "
        f"fresh pool (median {wrk_share:.0%} of a core for both); "
        f"every host is gunicorn -w 2 -k sync.",
        "",
        f"Machine: {environment_line()}, redis-server {redis_v}, redis-py {version('redis')}, "
        f"celery {version('celery')}.",
        "",
        *setup_rows(groups),
        "",
        *ratio_rows(groups),
        "",
        f"Server CPU is gunicorn (masters and workers), redis-server{celery} per answered "
        f"request. Both hosts share the machine's {os.cpu_count()} cores with each other, with "
        "Redis and with wrk, so two hosts cannot be faster than one here: the ratio is what the "
        "Redis state store costs per callback relative to SQLite, not a scale-out speed-up. "
        "Server cores busy is that CPU time over the run's wall time; other load is the rest of "
        "the machine's busy (and stolen) time, wrk excluded: other sessions' work.",
    ]
    for r in runs:
        if r.failures or r.exhausted:
            lines.append(
                f"\n**Round {r.round} {r.setup}:** non-200 {r.non200}, empty {r.empty}, socket "
                f"errors {r.socket_errors}, pool ran out {r.exhausted}, "
                f"store {r.store_problem or 'ok'}."
            )
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of every deployment")
    parser.add_argument(
        "--connections", type=int, default=8, help="wrk concurrency in all (even; half per wrk)"
    )
    parser.add_argument("--sample", type=int, default=60, help="requests checked per run")
    parser.add_argument(
        "--no-celery", action="store_true", help="skip the redis-2hosts-celery deployment"
    )
    parser.add_argument(
        "--control", action="store_true",
        help="also run redis-1host: one host on Redis, the SQLite host's topology",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true", help="keep each run's directory (logs, pools, state)"
    )
    parser.add_argument(
        "--pool-rate", type=int, default=5000, help="req/s to provision for a first run"
    )
    parser.add_argument(
        "--quiet-wait", type=int, default=1800,
        help="seconds to wait for other benchmarks (bench/*.py) to end first",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.connections < 2 or args.connections % 2:
        parser.error("--connections must be even and >= 2")
    return args


def schedule(args: argparse.Namespace, setups: Sequence[Setup]) -> Iterator[tuple[int, Setup]]:
    """(round, setup): sqlite first in odd rounds, last in even ones, against drift."""
    for n in range(1, args.rounds + 1):
        for setup in setups if n % 2 else reversed(setups):
            yield n, setup


def other_benchmarks() -> list[str]:
    """Command lines of other benchmark processes (not us, not our parent shell)."""
    mine = {os.getpid(), os.getppid()}
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            pid = int(cmdline.parent.name)
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if pid not in mine and re.search(OTHER_BENCHMARKS, text):
            found.append(f"{pid} {text.strip()[:100]}")
    return found


def wait_for_quiet(seconds: int) -> None:
    deadline = time.monotonic() + seconds
    said = False
    while others := other_benchmarks():
        if time.monotonic() > deadline:
            print(f"still running, measuring anyway: {others}", flush=True)
            return
        if not said:
            print(f"waiting for other benchmarks to end: {others}", flush=True)
            said = True
        time.sleep(5)


def run_all(args: argparse.Namespace, setups: Sequence[Setup]) -> list[Run]:
    creds = Credentials.random()
    sim = Simulator.create(
        creds.token, creds.encoding_aes_key, creds.corp_id, agent_id=creds.agent_id
    )
    workdir = Path(tempfile.mkdtemp(prefix="wecom-scaleout-"))
    runs: list[Run] = []
    try:
        lua = workdir / "replay_quantiles.lua"
        lua.write_text(QUANTILES_LUA, encoding="utf-8")
        ctx = Context(args, workdir, creds, sim, Mix(sim), lua)
        for round_no, setup in schedule(args, setups):
            runs.append(bench_setup(setup, round_no, ctx))
    finally:
        if args.keep:
            print(f"run directories kept under {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool, how in (
        ("wrk", "apt-get install -y wrk"),
        ("redis-server", "apt-get install -y redis-server"),
    ):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: {how}")
    setups = (SQLITE, *([CONTROL] if args.control else []), REDIS)
    setups += () if args.no_celery else (CELERY,)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    wait_for_quiet(args.quiet_wait)
    started, code_before = datetime.now(UTC), code_version()
    runs = run_all(args, setups)
    code_after = code_version()
    code = code_before if code_after == code_before else f"{code_before}, then {code_after}"
    text = report(runs, setups, args, started, code)
    print("\n" + text)
    OUT.mkdir(exist_ok=True)
    (OUT / "scaleout.md").write_text(text, encoding="utf-8")
    return 1 if any(r.failures or r.exhausted for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
