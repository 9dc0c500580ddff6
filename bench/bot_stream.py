"""AI-bot streams under gunicorn: how soon the first stream reply comes, and how many refresh
callbacks the shared store answers.

    python bench/bot_stream.py [--messages 200] [--concurrency 8] [--seconds 8] [--rounds 2]

The server: `gunicorn wsgi:app` with `callback.serve.ThreadWorker` (32 threads, as `wecom serve`
runs it), 1 and then 2 workers, the SQLite state in a temp dir, one bot, and a handler module
written into the temp dir:

    @router.text(re.compile("^slow"))    # an LLM: 30 words, 0.1 s each (3 s)
    @router.text(re.compile("^fast"))    # an answer at once
    @router.text(re.compile("^held"))    # a stream that stays open (for the refresh run)

1. **First reply**: --messages messages (distinct users), one at a time, then from
   --concurrency clients at once, to each handler: the time from the POST to the first stream
   reply, measured by the client (`callback.devtools.aibot`, WeCom's side). The target: under
   20 ms at p99 whatever the handler's speed, since the handler runs off the request thread.
2. **Refreshes**: 64 held streams are started, then wrk replays pre-encrypted refresh callbacks
   for them (bench/replay.lua, each once, -c8) for --seconds: req/s, p50/p99 and the server's CPU
   per refresh, and every answer checked to be 200 with a body.

Writes the report to bench/out/bot_stream.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import (
    BENCH,
    ROOT,
    child_env,
    code_version,
    environment_line,
    free_port,
    group_cpu_seconds,
    percentile,
    spawn,
    stop,
    wait_http,
    write_report,
)

sys.path.insert(0, str(ROOT))

from callback.devtools.aibot import AibotSide

TOKEN, KEY, BOT_ID = "BenchBotToken1", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "aibBENCH"
HANDLERS = """
import re, time
from callback import Router
router = Router("bench")

@router.text(re.compile(r"^slow"))
def slow(message, ctx):
    for n in range(30):
        time.sleep(0.1)
        yield f"word{n} "

@router.text(re.compile(r"^fast"))
def fast(message, ctx):
    return "at once"

@router.text(re.compile(r"^held"))
def held(message, ctx):
    yield "open"
    time.sleep(120)
"""


def serve(workdir: Path, workers: int) -> tuple[str, object, int]:
    (workdir / "bench_bot_handlers.py").write_text(HANDLERS, encoding="utf-8")
    config = workdir / "config.toml"
    config.write_text(
        f'[server]\nstate = "sqlite:///{workdir / "state.db"}"\nhandlers = ["bench_bot_handlers"]'
        f'\n\n[bots.bench]\ntoken = "{TOKEN}"\nencoding_aes_key = "{KEY}"\nbot_id = "{BOT_ID}"\n',
        encoding="utf-8",
    )
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--worker-class", "callback.serve.ThreadWorker",
               "--threads", "32", "--log-level", "warning",
               "--access-logfile", str(workdir / f"access-{workers}.log"),
               "--access-logformat", "%(m)s %(D)s"]  # fmt: skip
    env = child_env(WECOM_CONFIG=str(config), PYTHONPATH=f"{workdir}:{ROOT}")
    log = workdir / f"server-{workers}.log"
    proc = spawn(command, log, cwd=ROOT, env=env)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    return f"http://127.0.0.1:{port}/wecom/bot/bench", proc, port


def server_ms(access_log: Path, skip: int) -> list[float]:
    """The server's own time (gunicorn's %(D)s, request read to response written) of the
    POSTs logged after the first `skip` lines, in milliseconds."""
    lines = access_log.read_text(encoding="utf-8").splitlines()[skip:]
    return [int(f[1]) / 1000 for f in (ln.split() for ln in lines) if f and f[0] == "POST"]


def logged(access_log: Path) -> int:
    return len(access_log.read_text(encoding="utf-8").splitlines()) if access_log.exists() else 0


def first_replies(side: AibotSide, word: str, n: int, concurrency: int) -> list[float]:
    """Milliseconds from the POST to the first stream reply, for n messages."""

    def one(k: int) -> float:
        exchange = side.post(side.text(f"{word} {k}", user=f"u-{word}-{concurrency}-{k}"))
        assert exchange.status == 200 and exchange.reply, exchange
        return exchange.elapsed_s * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(n)))


def refresh_run(
    side: AibotSide, port: int, pid: int, workdir: Path, seconds: int
) -> dict[str, float]:
    """Start 64 held streams, then replay their refresh callbacks with wrk."""
    messages = [side.text(f"held {k}", user=f"held-{pid}-{k}") for k in range(64)]
    streams = []
    for message in messages:
        reply = side.post(message).reply
        assert reply is not None
        streams.append((message, reply["stream"]["id"]))
    pool = workdir / f"refresh-{pid}.txt"
    with pool.open("w", encoding="utf-8") as out:
        for n in range(60000):
            message, sid = streams[n % len(streams)]
            sealed = side.request(side.refresh(message, sid))
            query = "&".join(f"{k}={v}" for k, v in sealed.query.items())
            out.write(f"/wecom/bot/bench?{query}\t{sealed.body.decode()}\n")
    command = ["wrk", "-t", "1", "-c", "8", "-d", f"{seconds}s", "--timeout", "10s",
               "-s", str(BENCH / "replay.lua"), f"http://127.0.0.1:{port}"]  # fmt: skip
    env = os.environ | {"BENCH_POOL": str(pool), "BENCH_THREADS": "1", "BENCH_LIMIT": "0"}
    cpu_before = group_cpu_seconds(pid)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    cpu = group_cpu_seconds(pid) - cpu_before
    data = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])
    answered, duration = data["answered"], data["duration_us"] / 1e6
    return {
        "rps": answered / duration,
        "p50": data["p50_us"] / 1000,
        "p99": data["p99_us"] / 1000,
        "cpu_us": cpu / max(answered, 1) * 1e6,
        "bad": data["non200"] + data["empty"] + data["socket_errors"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    rows, refresh_rows = [], []
    for round_no in range(1, args.rounds + 1):
        for workers in (1, 2):
            workdir = Path(tempfile.mkdtemp(prefix="wecom-bot-bench-"))
            url, proc, port = serve(workdir, workers)
            side = AibotSide(url, TOKEN, KEY, BOT_ID, strict=False)
            try:
                access = workdir / f"access-{workers}.log"
                for word in ("fast", "slow"):
                    for concurrency in (1, args.concurrency):
                        skip = logged(access)
                        ms = first_replies(side, word, args.messages, concurrency)
                        time.sleep(0.2)  # the last access lines written
                        own = server_ms(access, skip)
                        rows.append((round_no, workers, word, concurrency, ms, own))
                pid = proc.pid  # type: ignore[attr-defined]
                refresh_rows.append(
                    (round_no, workers, refresh_run(side, port, pid, workdir, args.seconds))
                )
            finally:
                side.close()
                stop(proc)  # type: ignore[arg-type]
    lines = [
        f"AI-bot streams, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{args.rounds} rounds. Machine: {environment_line(['gunicorn'])}. "
        f"Code: {code_version()}.",
        "",
        "First stream reply (ms): seen by the client (which encrypts, signs and decrypts in",
        "Python, its threads sharing the 2 cores with the server), and the server's own time",
        "(gunicorn's request time: the request read to the response written).",
        "",
        "| round | workers | handler | clients | client p50 | client p99 | client max "
        "| server p50 | server p99 |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for round_no, workers, word, concurrency, ms, own in rows:
        lines.append(
            f"| {round_no} | {workers} | {word} | {concurrency} | {statistics.median(ms):.1f} | "
            f"{percentile(ms, 99):.1f} | {max(ms):.1f} | {statistics.median(own):.1f} | "
            f"{percentile(own, 99):.1f} |"
        )
    lines += ["", "Refresh callbacks (wrk -c8, 64 open streams):", "",
              "| round | workers | req/s | p50 ms | p99 ms | server CPU us/refresh | bad |",
              "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for round_no, workers, r in refresh_rows:
        lines.append(
            f"| {round_no} | {workers} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{r['cpu_us']:.0f} | {r['bad']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    write_report("bot_stream.md", text)
    worst = max(percentile(own, 99) for *_, own in rows)
    return 0 if worst < 20 and all(r["bad"] == 0 for *_, r in refresh_rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
