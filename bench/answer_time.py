"""Answer time: how fast WeCom gets its HTTP answer for a `background=True` route, whatever the
handler's duration.

    python bench/answer_time.py [--callbacks 200] [--concurrency 8] [--rounds 2] [--complete 32]

The real server (`gunicorn wsgi:app`, 2 sync workers) runs with a temporary config (`state =
"sqlite:///..."` in the temp dir, `handlers = ["bench_handlers"]`, `api_base_url` = the WeCom
emulator, which runs in its own process and receives the pushed replies). The handler module is
written into the temp dir and put on PYTHONPATH:

    @router.text(re.compile("^think"), background=True)
    def think(message, ctx):
        time.sleep(BENCH_SLEEP_S)          # 10 s, or 0.1 s for the control
        return f"thought about {message.content}"

Scenarios, each on a fresh server and state file, the emulator reset:

1. `slow`: the handler sleeps --sleep (10 s). --callbacks distinct callbacks (own MsgId, own
   user, fresh timestamp, built with callback.devtools.simulator.Simulator) one at a time, then
   as many again from --concurrency concurrent clients. Every answer must be an empty 200. Then the
   inbox (the SQLite state file) is read: every answered callback must already be claimed.
2. `control`: the same with a handler that sleeps --control-sleep (0.1 s); then every reply
   must reach the emulator. Slow and control alternate for --rounds (2).
3. `complete`: --complete callbacks to the slow handler, and a wait until every reply has
   reached the emulator (2 workers x `worker_threads` handlers run at a time).

Clients are processes (one at a time each). Answer time is measured by the client (connect to
last byte, so it includes waiting for a free gunicorn worker) and by gunicorn (`%(D)s` in the
access log: from the parsed request to the sent response). 20 un-routed callbacks warm each
server up first (they start the workers' threads) and are not counted.

Prints a markdown report and writes it to bench/out/answer.md. Exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import math
import multiprocessing
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common as common

sys.path.insert(0, str(common.ROOT))

from callback.devtools.emulator import DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_SECRET
from callback.devtools.simulator import Simulator
from callback.store import open_store

APP = "bench"
CALLBACK_PATH = f"/wecom/callback/{APP}"
TARGET_P99_MS = 20.0
WARMUP = 20

HANDLERS = '''"""bench/answer_time.py's handler: a background route taking BENCH_SLEEP_S s."""

import os
import re
import time

from callback import Router

router = Router("bench")
SLEEP_S = float(os.environ["BENCH_SLEEP_S"])


@router.text(re.compile("^think"), background=True)
def think(message, ctx):
    time.sleep(SLEEP_S)
    return f"thought about {message.content}"
'''


def random_credentials() -> tuple[str, str]:
    """A fresh callback token and a canonical 43-character EncodingAESKey."""
    while True:
        key = base64.b64encode(secrets.token_bytes(32)).decode()[:43]
        if key.isalnum():
            return secrets.token_hex(8), key


# -- the server ---------------------------------------------------------------------------------


class Server:
    """`gunicorn wsgi:app` with 2 sync workers in its own directory, on a free port."""

    def __init__(
        self,
        directory: Path,
        emulator_url: str,
        creds: tuple[str, str],
        sleep_s: float,
        threads: int,
    ) -> None:
        directory.mkdir()
        self.directory = directory
        self.state = directory / "state.db"
        # The schema (and WAL mode) first, as after a deployment's first start: workers opening
        # a brand-new file at the same instant can fail with "database is locked".
        open_store(f"sqlite:///{self.state}").close()
        (directory / "bench_handlers.py").write_text(HANDLERS, encoding="utf-8")
        config = directory / "config.toml"
        config.write_text(
            f'[server]\nstate = "sqlite:///{self.state}"\nhandlers = ["bench_handlers"]\n'
            f"worker_threads = {threads}\n\n"
            f'[apps.{APP}]\ncorp_id = "{DEFAULT_CORP_ID}"\nagent_id = {DEFAULT_AGENT_ID}\n'
            f'secret = "{DEFAULT_SECRET}"\ntoken = "{creds[0]}"\n'
            f'encoding_aes_key = "{creds[1]}"\napi_base_url = "{emulator_url}"\n',
            encoding="utf-8",
        )
        self.port = common.free_port()
        self.access = directory / "access.log"
        self.access.touch()
        self.log = directory / "gunicorn.log"
        command = [
            sys.executable, "-m", "gunicorn", "wsgi:app",
            "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--worker-class", "sync",
            "--timeout", "60", "--graceful-timeout", "2", "--pythonpath", str(common.ROOT),
            "--access-logfile", str(self.access), "--access-logformat", "%(D)s %(s)s %(m)s %(U)s",
            "--log-level", "warning",
        ]  # fmt: skip
        env = common.child_env(
            WECOM_CONFIG=str(config),
            BENCH_SLEEP_S=repr(sleep_s),
            PYTHONPATH=os.pathsep.join([str(directory), str(common.ROOT)]),
        )
        self.proc = common.spawn(command, self.log, cwd=directory, env=env)
        self._seen = 0  # access-log lines already taken

    def __enter__(self) -> Server:
        try:
            common.wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (gunicorn gives its workers 2 s), then SIGKILL: handlers still sleeping or
        queued are abandoned on purpose (their inbox records would be recovered on restart)."""
        common.stop(self.proc)

    def server_times(self, count: int, timeout: float = 10.0) -> list[float]:
        """The next `count` callback answer times (ms) from the access log, in log order."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [
                line.split()
                for line in self.access.read_text().splitlines()
                if f" POST {CALLBACK_PATH}" in line
            ]
            if len(lines) >= self._seen + count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        taken = lines[self._seen : self._seen + count]
        self._seen += len(taken)
        return [int(fields[0]) / 1000 for fields in taken]

    def inbox(self) -> tuple[dict[str, int], list[int]]:
        """Inbox records of `think` callbacks by state, and by owner (the worker process that
        claimed them), read from the state file (read-only)."""
        where = "WHERE CAST(plaintext AS TEXT) LIKE '%<Content><![CDATA[think %'"
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=10)
        try:
            states = db.execute(f"SELECT state, COUNT(*) FROM inbox {where} GROUP BY state")
            by_state = {str(state): int(n) for state, n in states.fetchall()}
            owners = db.execute(f"SELECT COUNT(*) FROM inbox {where} GROUP BY owner")
            by_owner = sorted((int(n) for (n,) in owners.fetchall()), reverse=True)
        finally:
            db.close()
        return by_state, by_owner


# -- the client ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """One callback as WeCom would see it: when it went, how long the answer took, what it was."""

    user: str
    sent_at: float  # wall clock, when the request started
    ms: float
    status: int
    body: bytes


def post(port: int, path: str, body: bytes) -> tuple[float, int, bytes]:
    """POST on a new connection (gunicorn's sync workers close each); (ms, status, body)."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "text/xml"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return (time.perf_counter() - began) * 1000, response.status, data


def client(
    port: int, requests: Sequence[tuple[str, bytes]]
) -> list[tuple[float, float, int, bytes]]:
    """One client process: its requests one at a time; (wall clock at the start, ms, status,
    body) for each."""
    results = []
    for path, body in requests:
        sent_at = time.time()
        results.append((sent_at, *post(port, path, body)))
    return results


def send_callbacks(
    server: Server, sim: Simulator, tag: str, count: int, concurrency: int, content: str = "think"
) -> tuple[list[Answer], float]:
    """`count` distinct text callbacks (own user, MsgId and content; encrypted, signed and
    timestamped just before the phase) dealt round-robin to `concurrency` client processes,
    each sending its share one at a time (processes, so that a client's own GIL does not add
    to the answer times). Returns the answers and the wall time of the phase."""
    users: list[str] = []
    requests: list[tuple[str, bytes]] = []
    for n in range(count):
        user = f"{tag}-{n}"  # a user each: pushed replies never wait for a member's window
        query, body = sim.post(sim.text(f"{content} {tag} {n}", user=user))
        users.append(user)
        requests.append((f"{CALLBACK_PATH}?{Simulator.query_string(query)}", body))
    clients = min(concurrency, count)
    pool = ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("fork"))
    try:
        list(pool.map(time.sleep, [0.05] * clients))  # every client process is up
        began = time.perf_counter()
        shares = [pool.submit(client, server.port, requests[k::clients]) for k in range(clients)]
        results = [share.result() for share in shares]
        seconds = time.perf_counter() - began
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [
        Answer(user, *results[n % clients][n // clients]) for n, user in enumerate(users)
    ], seconds


def wrong_answers(sim: Simulator, answers: Sequence[Answer]) -> int:
    """Answers that are not an empty 200 (a background route must answer at once, empty)."""
    bad = 0
    for a in answers:
        try:
            bad += a.status != 200 or sim.open_reply(a.body) != b""
        except Exception:
            bad += 1
    return bad


def wait_replies(
    emulator: common.EmulatorProcess, expected: int, timeout: float
) -> list[dict[str, Any]]:
    """Poll the emulator until `expected` messages arrived or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        records = emulator.messages()
        if len(records) >= expected or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


# -- scenarios ----------------------------------------------------------------------------------


@dataclass
class Phase:
    """One batch of callbacks against one server."""

    scenario: str
    sleep_s: float
    label: str
    concurrency: int
    answers: list[Answer]
    server_ms: list[float]
    seconds: float
    wrong: int

    @property
    def client_ms(self) -> list[float]:
        return [a.ms for a in self.answers]


@dataclass
class Outcome:
    """A scenario: its phases, the inbox right after them, and the replies at the emulator."""

    name: str
    round: int
    sleep_s: float
    phases: list[Phase]
    inbox: dict[str, int] = field(default_factory=dict)
    per_worker: list[int] = field(default_factory=list)  # callbacks claimed by each worker
    inbox_after_s: float = 0.0
    replies: int = 0
    expected_replies: int = 0
    waited_for_all: bool = False
    last_reply_s: float = math.nan  # from the first callback to the last reply
    delays_s: list[float] = field(default_factory=list)  # answer -> reply at the emulator
    wrong_replies: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Bench:
    """What every scenario shares."""

    args: argparse.Namespace
    workdir: Path
    emulator: common.EmulatorProcess
    creds: tuple[str, str]
    sim: Simulator


def run_scenario(
    bench: Bench,
    name: str,
    round_no: int,
    sleep_s: float,
    phases: Sequence[tuple[str, int, int]],
    wait_all: bool,
) -> Outcome:
    """Fresh server and emulator; warm up; the phases; the inbox; the replies (waiting for all
    of them when `wait_all`)."""
    bench.emulator.reset()
    outcome = Outcome(name, round_no, sleep_s, [])
    tag = f"{name}{round_no}"
    directory = bench.workdir / tag
    with Server(
        directory, bench.emulator.url, bench.creds, sleep_s, bench.args.worker_threads
    ) as server:
        warm, _ = send_callbacks(server, bench.sim, f"{tag}-warm", WARMUP, 2, content="hello")
        server.server_times(len(warm))
        if wrong_answers(bench.sim, warm):
            outcome.problems.append("a warm-up callback was not answered with an empty 200")
        started = time.time()
        for label, count, concurrency in phases:
            answers, seconds = send_callbacks(
                server, bench.sim, f"{tag}-{label}", count, concurrency
            )
            phase = Phase(
                scenario=tag,
                sleep_s=sleep_s,
                label=label,
                concurrency=concurrency,
                answers=answers,
                server_ms=server.server_times(len(answers)),
                seconds=seconds,
                wrong=wrong_answers(bench.sim, answers),
            )
            outcome.phases.append(phase)
            print(describe(phase), flush=True)
        outcome.inbox, outcome.per_worker = server.inbox()
        outcome.inbox_after_s = time.time() - started
        sent = [a for p in outcome.phases for a in p.answers]
        outcome.expected_replies = len(sent)
        timeout = bench.args.reply_timeout if wait_all else 0.0
        records = wait_replies(bench.emulator, len(sent), timeout)
        check_replies(outcome, sent, records, started, wait_all)
    return outcome


def check_replies(
    outcome: Outcome,
    sent: Sequence[Answer],
    records: Sequence[dict[str, Any]],
    started: float,
    waited: bool,
) -> None:
    """Count the replies, match each to its callback (user and text), record the problems."""
    answered = sum(outcome.inbox.values())
    if answered != len(sent):
        outcome.problems.append(f"{answered} inbox records for {len(sent)} answered callbacks")
    by_user = {a.user: a for a in sent}
    outcome.replies, outcome.waited_for_all = len(records), waited
    for record in records:
        (user,) = record["touser"]
        answer = by_user.get(user)
        tag, _, n = user.rpartition("-")
        text = record["body"].get("text", {}).get("content", "")
        if answer is None or text != f"thought about think {tag} {n}":
            outcome.wrong_replies += 1
            continue
        outcome.delays_s.append(record["sent_at"] - (answer.sent_at + answer.ms / 1000))
    if records:
        outcome.last_reply_s = max(r["sent_at"] for r in records) - started
    if outcome.wrong_replies:
        outcome.problems.append(f"{outcome.wrong_replies} replies do not match their callback")
    if waited and len(records) != len(sent):
        outcome.problems.append(f"{len(records)} of {len(sent)} replies reached the emulator")
    for phase in outcome.phases:
        if phase.wrong:
            outcome.problems.append(f"{phase.label}: {phase.wrong} answers not an empty 200")
        if len(phase.server_ms) != len(phase.answers):
            outcome.problems.append(f"{phase.label}: the access log lacks some requests")


def describe(phase: Phase) -> str:
    """One progress line."""
    c, s = phase.client_ms, phase.server_ms
    return (
        f"{phase.scenario:>8} (handler {phase.sleep_s:g} s) {phase.label:>10} "
        f"x{phase.concurrency}: n={len(c)} answer p50 {common.percentile(c, 50):.2f} ms "
        f"p99 {common.percentile(c, 99):.2f} ms max {max(c):.2f} ms | gunicorn p50 "
        f"{common.percentile(s, 50):.2f} p99 {common.percentile(s, 99):.2f} ms "
        f"| wrong {phase.wrong}"
    )


# -- report -------------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    return " / ".join(
        f"{x:.1f}"
        for x in (common.percentile(values, 50), common.percentile(values, 99), max(values))
    )


def answer_table(outcomes: Sequence[Outcome]) -> list[str]:
    """Answer times, every phase of every scenario and round."""
    lines = [
        "| scenario | round | handler | phase | callbacks | clients "
        "| answer ms p50 / p99 / max (client) | gunicorn ms p50 / p99 / max | p99 < 20 ms "
        "| answers not an empty 200 |",
        "|---|---:|---:|---|---:|---:|---|---|---|---:|",
    ]
    for o in outcomes:
        for p in o.phases:
            met = "yes" if common.percentile(p.client_ms, 99) < TARGET_P99_MS else "**no**"
            lines.append(
                f"| {o.name} | {o.round} | {p.sleep_s:g} s | {p.label} | {len(p.answers)} "
                f"| {p.concurrency} | {_ms(p.client_ms)} | {_ms(p.server_ms)} | {met} "
                f"| {p.wrong} |"
            )
    return lines


def ratio_table(outcomes: Sequence[Outcome]) -> list[str]:
    """slow / control answer times (client side) per phase, within each round of this run."""
    by = {(o.name, o.round): o for o in outcomes}
    lines = [
        "| round | phase | answer p50, slow / control | answer p99, slow / control "
        "| gunicorn p50, slow / control |",
        "|---:|---|---:|---:|---:|",
    ]
    for (name, round_no), slow in by.items():
        control = by.get(("control", round_no))
        if name != "slow" or control is None:
            continue
        for a, b in zip(slow.phases, control.phases, strict=True):
            p50 = common.percentile(a.client_ms, 50) / common.percentile(b.client_ms, 50)
            p99 = common.percentile(a.client_ms, 99) / common.percentile(b.client_ms, 99)
            g50 = common.percentile(a.server_ms, 50) / common.percentile(b.server_ms, 50)
            lines.append(f"| {round_no} | {a.label} | {p50:.2f} | {p99:.2f} | {g50:.2f} |")
    return lines


def delivery_table(outcomes: Sequence[Outcome], threads: int) -> list[str]:
    """The inbox right after the phases, and the replies that reached the emulator."""
    lines = [
        "| scenario | round | handler | callbacks answered | inbox right after (s after the "
        "first) | claimed per worker | of which waiting for a thread | replies at the emulator "
        "| last reply after | answer → reply s min / median / max |",
        "|---|---:|---:|---:|---|---|---:|---|---:|---|",
    ]
    for o in outcomes:
        inbox = ", ".join(f"{n} {state}" for state, n in sorted(o.inbox.items())) or "none"
        waited = "" if o.waited_for_all else " (not waited for)"
        delays = (
            f"{min(o.delays_s):.1f} / {common.percentile(o.delays_s, 50):.1f} / "
            f"{max(o.delays_s):.1f}"
            if o.delays_s
            else "-"
        )
        last = f"{o.last_reply_s:.1f} s" if o.replies else "-"
        # while no handler has finished, each worker runs `threads` and queues the rest
        waiting = (
            str(sum(max(0, n - threads) for n in o.per_worker))
            if o.inbox_after_s < o.sleep_s and not o.inbox.get("done")
            else "-"
        )
        lines.append(
            f"| {o.name} | {o.round} | {o.sleep_s:g} s | {o.expected_replies} | {inbox} "
            f"({o.inbox_after_s:.1f} s) | {' / '.join(map(str, o.per_worker))} | {waiting} "
            f"| {o.replies} of {o.expected_replies}{waited} | {last} | {delays} |"
        )
    lines += [
        "",
        f"At most {2 * threads} handlers run at a time (2 workers × `worker_threads`), each "
        "worker's threads only the callbacks that worker claimed; the others wait in their "
        "worker's queue, already claimed in the inbox (`running`).",
    ]
    return lines


def report(outcomes: Sequence[Outcome], args: argparse.Namespace, started: datetime) -> str:
    """The markdown report."""
    lines = [
        f"Answer time of a `background=True` route, {started:%Y-%m-%d %H:%M} UTC: `gunicorn "
        f"wsgi:app` with 2 sync workers, `worker_threads = {args.worker_threads}`, "
        f'`state = "sqlite:///..."`, the WeCom emulator in its own process for the pushed '
        f"replies; {args.rounds} round(s) of slow ({args.sleep:g} s) then control "
        f"({args.control_sleep:g} s), each on a fresh server; {WARMUP} un-routed warm-up "
        "callbacks per server not counted.",
        "",
        f"Machine: {common.environment_line(['gunicorn', 'Flask', 'pycryptodome'])}. "
        f"Code: {common.code_version()}.",
        "",
        *answer_table(outcomes),
        "",
        *ratio_table(outcomes),
        "",
        *delivery_table(outcomes, args.worker_threads),
    ]
    problems = [f"- {o.name} {o.round}: {p}" for o in outcomes for p in o.problems]
    if problems:
        lines += ["", "**Failed checks:**", "", *problems]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--callbacks", type=int, default=200, help="callbacks per phase")
    parser.add_argument("--concurrency", type=int, default=8, help="clients of the 2nd phase")
    parser.add_argument("--rounds", type=int, default=2, help="repeats of slow, then control")
    parser.add_argument("--sleep", type=float, default=10.0, help="the slow handler's seconds")
    parser.add_argument(
        "--control-sleep", type=float, default=0.1, help="the control handler's seconds"
    )
    parser.add_argument(
        "--complete", type=int, default=32, help="callbacks of the completion check (0: skip)"
    )
    parser.add_argument(
        "--wait-all",
        action="store_true",
        help="also wait for every reply of the slow scenario (2 x callbacks x sleep / "
        "(2 x worker_threads) seconds: about 250 s by default)",
    )
    parser.add_argument(
        "--worker-threads", type=int, default=8, help="[server] worker_threads (default 8)"
    )
    parser.add_argument(
        "--reply-timeout", type=float, default=120.0, help="most seconds to wait for replies"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, state)")
    args = parser.parse_args(argv)
    if min(args.callbacks, args.concurrency, args.worker_threads, args.rounds) < 1:
        parser.error("--callbacks, --concurrency, --rounds and --worker-threads must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, print and save the report; 1 if a check failed."""
    args = parse_args(argv)
    common.sigterm_as_interrupt()
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="wecom-answer-bench-"))
    creds = random_credentials()
    sim = Simulator.create(*creds, DEFAULT_CORP_ID, agent_id=DEFAULT_AGENT_ID)
    phases = [("sequential", args.callbacks, 1), ("concurrent", args.callbacks, args.concurrency)]
    outcomes: list[Outcome] = []
    emulator: common.EmulatorProcess | None = None
    try:
        emulator = common.EmulatorProcess(workdir)
        bench = Bench(args, workdir, emulator, creds, sim)
        for n in range(1, args.rounds + 1):
            outcomes.append(run_scenario(bench, "slow", n, args.sleep, phases, args.wait_all))
            outcomes.append(run_scenario(bench, "control", n, args.control_sleep, phases, True))
        if args.complete:
            complete = [("completion", args.complete, min(args.concurrency, args.complete))]
            outcomes.append(run_scenario(bench, "complete", 1, args.sleep, complete, True))
    finally:
        if emulator is not None:
            emulator.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(outcomes, args, started)
    print("\n" + text)
    print(f"written to {common.write_report('answer.md', text)}")
    return 1 if any(o.problems for o in outcomes) else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # every child was stopped on the way out
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
