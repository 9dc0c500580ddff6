"""One sending process of bench/send_throughput.py (not meant to be run by hand).

    python bench/_send_worker.py '{"mode": "client", "api": URL, "state": URL, ...}'

Builds its own WecomClient on the shared state store, prints `ready`, waits for a line on stdin
(the driver releases every process at once), then `threads` threads send `messages` text
messages between them, each to a distinct user, and one JSON line reports the latency of every
send, the wall-clock window, this process's CPU time and the errors.

mode "client": `WecomClient.send` (rate window, duplicate-check claim, shared token, POST).
mode "raw": the same message/send bodies POSTed with requests and a token the driver fetched:
the emulator's and the HTTP stack's share, without the client's state-store work.
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import threading
import time
from typing import Any

from callback.config import from_mapping
from callback.outbound import Text
from callback.outbound.client import WecomClient
from callback.store import open_store

APP = "bench"


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(spec: dict[str, Any]) -> None:
    settings = from_mapping(
        {
            "apps": {
                APP: {
                    "corp_id": spec["corp_id"],
                    "agent_id": int(spec["agent_id"]),
                    "secret": spec["secret"],
                    "api_base_url": spec["api"],
                }
            }
        }
    )
    store = open_store(spec["state"])
    client = WecomClient(settings.apps, store)
    raw = spec["mode"] == "raw"
    send_url = f"{spec['api']}/cgi-bin/message/send"
    token_query = {"access_token": spec.get("token", "")}
    prefix, total = spec["prefix"], int(spec["messages"])
    numbers = itertools.count()  # next() on a count is atomic under the GIL
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def work() -> None:
        mine: list[float] = []
        while (n := next(numbers)) < total:
            user, text = f"{prefix}u{n}", Text(f"bench {prefix} message {n}")
            try:
                if raw:
                    (body,) = client.bodies(APP, text, [user])
                    began = time.perf_counter()
                    answer = client.session.post(send_url, params=token_query, json=body)
                    if answer.json().get("errcode", 0) != 0:
                        raise RuntimeError(answer.text)
                else:
                    began = time.perf_counter()
                    client.send(APP, text, [user])
                mine.append((time.perf_counter() - began) * 1000)
            except Exception as exc:  # counted and reported; the driver fails the run
                with lock:
                    errors.append(repr(exc))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(int(spec["threads"]))]
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    cpu_before, start = cpu_seconds(), time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end, cpu = time.time(), cpu_seconds() - cpu_before
    store.close()
    report = {
        "start": start,
        "end": end,
        "cpu_s": cpu,
        "latencies_ms": latencies,
        "error_count": len(errors),
        "errors": errors[:3],
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
