"""The open WebSockets of one IO loop: those whose OPEN has run and whose CLOSE has
not, so that close() can say goodbye to each.

Concurrency contract: workers add (at OPEN) and discard (at CLOSE); the closing
thread closes the registry and reads it. `_lock` guards `_open` and `_closed`.
"""

import threading
import time

from mummy.core.wsengine import WebSocketEngine


class WebSocketRegistry:
    __slots__ = ("_closed", "_lock", "_open")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[WebSocketEngine] = set()
        self._closed = False

    def __len__(self) -> int:
        """Any thread: WebSockets open now (a set's length: one atomic read)."""
        return len(self._open)

    def add(self, engine: WebSocketEngine) -> bool:
        """Worker, before OPEN: False once the server is closing (no OPEN then)."""
        with self._lock:
            if self._closed:
                return False
            self._open.add(engine)
            return True

    def discard(self, engine: WebSocketEngine) -> None:
        with self._lock:
            self._open.discard(engine)

    def close(self) -> list[WebSocketEngine]:
        """Refuse new WebSockets; the open ones."""
        with self._lock:
            self._closed = True
            return list(self._open)

    def remaining(self) -> list[WebSocketEngine]:
        with self._lock:
            return list(self._open)

    def wait_empty(self, until: float) -> bool:
        """Wait until `until` (monotonic) for every CLOSE to have run; True if so."""
        while True:
            with self._lock:
                if not self._open:
                    return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.02)
