"""Served: a devtools server (the emulator, its WebSocket side, a media host) that serves from
a daemon thread and works as a context manager: `with Server(...) as s:` starts and stops it."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self


class Served:
    """Subclasses give `_serve` (the blocking loop), `_name` and `stop` (which calls `_join`
    after making `_serve` return)."""

    _thread: threading.Thread | None = None

    def _serve(self) -> None:
        raise NotImplementedError

    def _name(self) -> str:
        return type(self).__name__

    def start(self) -> Self:
        """Serve from a daemon thread (once; again after a stop)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name(), daemon=True)
            self._thread.start()
        return self

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
