"""A burst of slow handlers, delivered with WeCom's timing: what each member saw, and how soon.

    python bench/burst.py [--members 40] [--handler-s 1.5] [--rounds 2] [--threads 32]

`wecom serve --config` runs with every delivery setting at its default (2 workers of the
threaded worker, 32 request and 32 handler threads each; `--threads` overrides the request
threads, e.g. 1 to see a server that answers one request at a time per process). The WeCom
emulator runs in its own process and receives the pushed replies. --members members each send
one message at the same moment; its handler sleeps --handler-s (an LLM call, say) and answers.
Every callback is delivered by `callback.devtools.timed_delivery` (5 s per attempt, re-encrypted
retries, 3 attempts, a passive reply counted only inside its attempt).

Reported per round: members who saw exactly one reply (the goal: all), how many replies were
passive and how many pushed, handler runs, the answer time WeCom saw for the attempt that
counted (p50/p99), and the time until the member saw the reply (p50/p99/max: the passive answer,
or the pushed message's arrival at the emulator), both from the first attempt's start.
Writes the report to bench/out/burst.md. Exits 1 if any member saw no reply or more than one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    ROOT,
    EmulatorProcess,
    child_env,
    code_version,
    environment_line,
    free_port,
    percentile,
    spawn,
    stop,
    wait_http,
    write_report,
)

sys.path.insert(0, str(ROOT))

from callback.devtools.emulator import DEFAULT_CORP_ID, DEFAULT_SECRET, EmulatorControl
from callback.devtools.simulator import Simulator
from callback.devtools.timed_delivery import Delivered, TimedDelivery, member_view

TOKEN, AES_KEY = "BurstToken1", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
HANDLERS = """
import os, re, time
from callback import Router
router = Router("burst")

@router.text(re.compile(r"^member "))
def member(message, ctx):
    with open(os.environ["BURST_LOG"], "a") as log:
        log.write(message.content + "\\n")
    time.sleep(float(os.environ["BURST_HANDLER_S"]))
    return f"answer to {message.content}"
"""


def serve(workdir: Path, api_url: str, args: argparse.Namespace) -> tuple[str, object]:
    """Start `wecom serve` with a config whose [server] keeps every delivery default."""
    (workdir / "burst_handlers.py").write_text(HANDLERS, encoding="utf-8")
    config = workdir / "config.toml"
    config.write_text(
        f'[server]\nhandlers = ["burst_handlers"]\n\n[apps.hr]\ncorp_id = "{DEFAULT_CORP_ID}"\n'
        f'agent_id = 1000002\nsecret = "{DEFAULT_SECRET}"\ntoken = "{TOKEN}"\n'
        f'encoding_aes_key = "{AES_KEY}"\napi_base_url = "{api_url}"\n',
        encoding="utf-8",
    )
    port = free_port()
    command = [sys.executable, "-m", "callback.cli", "serve", "--config", str(config)]
    command += ["--bind", f"127.0.0.1:{port}", "--threads", str(args.threads)]
    env = child_env(
        PYTHONPATH=f"{workdir}:{ROOT}",
        BURST_LOG=str(workdir / "runs.log"),
        BURST_HANDLER_S=str(args.handler_s),
    )
    log = workdir / "server.log"
    proc = spawn(command, log, cwd=workdir, env=env)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    return f"http://127.0.0.1:{port}/wecom/callback/hr", proc


def one_round(args: argparse.Namespace, emulator: EmulatorProcess) -> dict[str, object]:
    """A fresh server and state; the burst; what every member saw."""
    workdir = Path(tempfile.mkdtemp(prefix="wecom-burst-"))
    emulator.reset()
    url, proc = serve(workdir, emulator.url, args)
    members = [f"member{n:03d}" for n in range(args.members)]
    sim = Simulator.create(TOKEN, AES_KEY, DEFAULT_CORP_ID, agent_id=1000002)
    wecom = TimedDelivery(url, sim, clock=time.time)
    try:
        burst = [sim.text(f"member {m}", user=m) for m in members]
        deliveries: list[Delivered] = wecom.deliver_many(burst, concurrency=len(members))
        control = EmulatorControl(emulator.url)
        deadline = time.time() + 60
        while time.time() < deadline:
            views = {m: member_view(m, deliveries, control) for m in members}
            if all(v.texts for v in views.values()):
                break
            time.sleep(0.5)
        time.sleep(2)  # anything more would have come by now
        views = {m: member_view(m, deliveries, control) for m in members}
        pushed_at = {str(r["touser"][0]): float(r["sent_at"]) for r in control.messages()}
    finally:
        stop(proc)  # type: ignore[arg-type]
    runs = (workdir / "runs.log").read_text().splitlines()
    seen: list[float] = []
    answer: list[float] = []
    for member, delivered in zip(members, deliveries, strict=True):
        start = delivered.attempts[0].started_at
        counted = delivered.counted
        if counted is not None and counted.answered_at is not None:
            answer.append(counted.answered_at - start)
        if delivered.passive is not None and counted is not None and counted.answered_at:
            seen.append(counted.answered_at - start)
        elif member in pushed_at:
            seen.append(pushed_at[member] - start)
    return {
        "one": sum(1 for v in views.values() if len(v.texts) == 1),
        "none": sum(1 for v in views.values() if not v.texts),
        "more": sum(1 for v in views.values() if len(v.texts) > 1),
        "passive": sum(1 for v in views.values() if v.passive),
        "pushed": sum(1 for v in views.values() if v.pushed),
        "runs": len(runs),
        "attempts": sum(d.attempts_sent for d in deliveries),
        "answer": answer,
        "seen": seen,
    }


def report(args: argparse.Namespace, results: Sequence[dict[str, object]]) -> str:
    def ms(values: object, q: float) -> str:
        data = list(values)  # type: ignore[call-overload]
        return f"{percentile(data, q) * 1000:.0f}" if data else "-"

    lines = [
        f"Burst, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: {args.members} members at "
        f"once, handler {args.handler_s} s, `wecom serve` defaults with {args.threads} request "
        f"threads per worker, WeCom's timing (5 s per attempt, 3 attempts).",
        "",
        f"Machine: {environment_line(['gunicorn', 'Flask'])}. Code: {code_version()}.",
        "",
        "| round | saw one reply | saw none | saw more | passive | pushed | handler runs "
        "| attempts | answer p50/p99 ms | reply seen p50/p99/max ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in enumerate(results, 1):
        seen = r["seen"]
        lines.append(
            f"| {n} | {r['one']} | {r['none']} | {r['more']} | {r['passive']} | {r['pushed']} | "
            f"{r['runs']} | {r['attempts']} | {ms(r['answer'], 50)}/{ms(r['answer'], 99)} | "
            f"{ms(seen, 50)}/{ms(seen, 99)}/{ms(seen, 100)} |"
        )
    medians = [statistics.median(r["seen"]) for r in results if r["seen"]]  # type: ignore[arg-type]
    if medians:
        lines += ["", f"Median time to the reply over rounds: {statistics.median(medians):.2f} s."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--handler-s", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32, help="request threads per worker")
    args = parser.parse_args(argv)
    emulator = EmulatorProcess(Path(tempfile.mkdtemp(prefix="wecom-burst-emulator-")))
    try:
        results = [one_round(args, emulator) for _ in range(args.rounds)]
    finally:
        emulator.stop()
    text = report(args, results)
    print(text)
    write_report("burst.md", text)
    return 0 if all(r["one"] == args.members for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
