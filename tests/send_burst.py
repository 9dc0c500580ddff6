"""The token tests' burst: P processes of T threads, released at one instant, each thread sending
one text through a shared state store. `burst()` runs it; this file is also the process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from callback.config import from_mapping
from callback.outbound import Text
from callback.outbound.client import WecomClient
from callback.store import open_store


def main(
    base_url: str, corp_id: str, agent_id: str, secret: str, state: str, threads: str, at: str
) -> None:
    settings = from_mapping(
        {
            "apps": {
                "a": {
                    "corp_id": corp_id,
                    "agent_id": int(agent_id),
                    "secret": secret,
                    "api_base_url": base_url,
                }
            }
        }
    )
    client = WecomClient(settings.apps, open_store(state))  # any state URL: sqlite, redis
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            client.send("a", Text(f"burst {n}"), [f"user{n % 7}"], duplicate_check=False)
        except BaseException as exc:  # reported to the parent through the exit status
            errors.append(exc)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(int(threads))]
    time.sleep(max(0.0, float(at) - time.time()))  # every process starts at the same instant
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        print(repr(errors[0]), file=sys.stderr)
        sys.exit(1)


def burst(api_url: str, state: str, processes: int, threads: int) -> None:
    """Run the burst against the default emulator app; fail if any sender failed."""
    from callback.devtools.emulator import DEFAULT_CORP_ID, DEFAULT_SECRET

    at = time.time() + 1.5  # every process starts sending at the same instant
    args = [api_url, DEFAULT_CORP_ID, "1000002", DEFAULT_SECRET, state, str(threads), str(at)]
    procs = [
        subprocess.Popen([sys.executable, __file__, *args], stderr=subprocess.PIPE)
        for _ in range(processes)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()


if __name__ == "__main__":
    main(*sys.argv[1:])
