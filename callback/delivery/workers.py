"""One server process's worker threads, and the inbox leases their handlers hold.

gunicorn forks its workers after `create_app()`, and threads do not survive a fork, so the
threads start on first use in each process (`start`, cheap once running), each process with its
own owner id for the store. A handler's key is "held" from the moment its job is submitted
until the job ends; a maintenance thread calls `tick` twice a second, and delivery renews the
held keys' leases there, so that a callback is recovered elsewhere only when its process died.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger("wecom.delivery")

Tick = Callable[[dict[str, float]], None]
R = TypeVar("R")

#: Outbox sender threads per process, and how many outbox attempts may wait or run at once.
#: The bound keeps an outage from growing memory: past it, due items wait in the store.
SENDER_THREADS = 4
SEND_QUEUE = 64


class Workers:
    """Handler threads, outbox sender threads and the maintenance thread of this process."""

    def __init__(self, threads: int, tick: Tick) -> None:
        self.threads = threads
        self.tick = tick  # one maintenance pass; its argument keeps state between passes
        self.owner = ""  # this process's name in the store: host, pid and a random part
        self.stopped = threading.Event()
        self._pid = 0
        self._held: Counter[str] = Counter()  # inbox keys our handlers are running
        self._lock = threading.Lock()
        self._sending = 0  # outbox attempts submitted and not yet ended

    def start(self) -> None:
        """Start this process's threads (again after a fork); cheap when running."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self.handlers = ThreadPoolExecutor(self.threads, thread_name_prefix="wecom-handler")
            self.senders = ThreadPoolExecutor(SENDER_THREADS, thread_name_prefix="wecom-outbox")
            self._held.clear()
            self._sending = 0
            self._pid = os.getpid()
            args = (weakref.ref(self), self.stopped)
            threading.Thread(target=_loop, args=args, name="wecom-maintenance", daemon=True).start()

    @property
    def running_here(self) -> bool:
        """True once started in this process."""
        return self._pid == os.getpid()

    def stop(self) -> None:
        """Stop the maintenance thread (handlers already running finish)."""
        self.stopped.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no handler runs or waits and no outbox attempt is under way in this
        process, for at most `timeout` seconds; whether that happened."""
        deadline = time.monotonic() + timeout
        while self.held() or self._sending:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # -- leases ----------------------------------------------------------------------------------

    def hold(self, key: str) -> None:
        """From now on `held()` lists `key`, so its lease is renewed (a heartbeat)."""
        with self._lock:
            self._held[key] += 1

    def release(self, key: str) -> None:
        with self._lock:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

    @contextmanager
    def holding(self, key: str) -> Iterator[None]:
        self.hold(key)
        try:
            yield
        finally:
            self.release(key)

    def held(self) -> list[str]:
        """The keys whose handlers run (or wait for a thread) in this process."""
        with self._lock:
            return list(self._held)

    # -- jobs ------------------------------------------------------------------------------------

    def submit(self, key: str, job: Callable[[], None]) -> None:
        """Run `job` for inbox `key` on a handler thread, holding the key's lease from now (a job
        waiting for a thread keeps its lease too). A job that fails because the store failed
        under it is logged; its callback is recovered once its lease runs out."""
        self.hold(key)

        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("delivery of %s failed; it will be recovered", key)
            finally:
                self.release(key)

        try:
            self.handlers.submit(run)
        except RuntimeError:  # the interpreter is shutting down: no new threads
            self.release(key)
            log.warning("process stopping: %s will run again once its lease runs out", key)

    def send(self, job: Callable[..., Any], *args: Any) -> bool:
        """Run an outbox job on a sender thread, if the send queue has room (False if not: the
        item stays due in the store, for a later maintenance pass). A job's exception is
        logged; the item's lease then runs out and it is attempted again."""
        with self._lock:
            if self._sending >= SEND_QUEUE:
                return False
            self._sending += 1

        def run() -> None:
            try:
                job(*args)
            except Exception:
                item = getattr(args[0], "id", args[0]) if args else "?"
                log.exception("outbox attempt of %s failed; it will be attempted again", item)
            finally:
                with self._lock:
                    self._sending -= 1

        try:
            self.senders.submit(run)
        except RuntimeError:  # the interpreter is shutting down: the item stays due
            with self._lock:
                self._sending -= 1
            return False
        return True

    def on_sender(self, call: Callable[[], R]) -> R:
        """Run `call` on a sender thread and wait for its result (a send by a handler that
        runs on the request thread: the request thread itself never calls the send API)."""
        return self.senders.submit(call).result()

    def send_room(self) -> int:
        """How many more outbox attempts the send queue takes now."""
        with self._lock:
            return SEND_QUEUE - self._sending


def _loop(ref: weakref.ref[Workers], stopped: threading.Event) -> None:
    """The maintenance loop; it ends when stopped, or when the Workers are garbage-collected."""
    last: dict[str, float] = {}
    while not stopped.wait(0.5):
        workers = ref()
        if workers is None or workers._pid != os.getpid():
            return
        try:
            workers.tick(last)
        except Exception:
            log.exception("maintenance pass failed; retrying")
        del workers
