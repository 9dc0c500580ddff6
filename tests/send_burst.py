"""A helper process for the token tests: T threads each send one text through a shared store."""

from __future__ import annotations

import sys
import threading
import time

from callback.client import WecomClient
from callback.config import from_mapping
from callback.outbound import Text
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


if __name__ == "__main__":
    main(*sys.argv[1:])
