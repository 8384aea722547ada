"""The worker pool: threads that take tasks from the ring and run them.

On the free-threaded build the workers run Python truly in parallel; on the
GIL build they still overlap blocking calls (sleep, IO, a database query).
"""

import logging
import threading
import time
from collections.abc import Callable

from mummy.core.ring import TaskRing

log = logging.getLogger("mummy")


class WorkerPool[T]:
    """`count` threads, each looping `run(ring.get())` until told to stop.

    `run` must not raise; if it does anyway, the error is logged and the worker
    goes on with the next task.
    """

    def __init__(self, count: int, ring: TaskRing[T], run: Callable[[T], None]) -> None:
        self.ring = ring
        self._run = run
        self._threads = [
            threading.Thread(target=self._loop, name=f"mummy-worker-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _loop(self) -> None:
        get = self.ring.get
        run = self._run
        while True:
            task = get()
            if task is None:
                return
            try:
                run(task)
            except BaseException:
                log.exception("worker task failed")

    def stop(self, deadline: float) -> bool:
        """Ask every worker to stop after its current task; wait until `deadline`
        (a time.monotonic() value). True if all stopped in time."""
        self.ring.stop_workers(len(self._threads))
        for t in self._threads:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
