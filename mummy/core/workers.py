"""The worker pool: threads that take tasks from the ring and run them.

On the free-threaded build the workers run Python truly in parallel; on the
GIL build they still overlap blocking calls (sleep, IO, a database query).

A fixed pool (`min_workers == max_workers`) is that many threads for the
server's life. An adaptive pool starts `min_workers` threads and grows towards
`max_workers` (doubling at most, every CHECK_SECONDS) only when tasks have been
waiting for two checks AND the machine has idle CPU AND the garbage collector
was not what kept the workers (GcClock): then the busy workers are blocked
(sleeping, waiting on a database), not computing, and more threads serve more
requests. When tasks wait and the CPU is busy, more threads
would only add contention (3.13t's locks spin with sched_yield when contended),
so the pool stays. A worker idle for `idle_timeout` retires, down to
`min_workers`; and while the machine's CPU is saturated (90% over the last
second), a quarter of the workers above `min_workers` retire every check (a pool
grown for blocking handlers then shrinks when the load turns to computing, where
no thread ever idles).

Why the machine's idle CPU and not each task's `time.thread_time()` against its
wall time: `thread_time` is a system call (~0.5 us on 3.13t, twice per task is
~4% of a hello-world request), and on a busy machine a computing task waits for
a core too, so its wall time exceeds its CPU time exactly as a blocked task's
does. Idle CPU is what more threads could use.

Concurrency contract: `_lock` guards `_threads`, `_stopping` and `_retire_wanted`;
it is taken when a thread starts or retires, by `stop`, and once a check by the
manager, never per task. The manager
thread (`mummy-pool`, adaptive pools only) reads `ring.queued`, the queue's
length (a snapshot: a stale value only delays a decision by one check).
"""

import gc
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import Empty

from mummy.core.config import available_cores
from mummy.core.ring import TaskRing

log = logging.getLogger("mummy")

CHECK_SECONDS = 0.05  # how often an adaptive pool looks at the ring and the CPU
GROW_BELOW_BUSY = 0.75  # grow only while the machine's CPUs are busy less than this
GROW_BELOW_GC = 0.2  # ... and the garbage collector ran less than this share of the time
SHRINK_ABOVE_BUSY = 0.9  # the machine saturated: more threads than min_workers only contend
SHRINK_AFTER_CHECKS = 20  # ... on average over this many checks (1 s; one check counts in
# clock ticks, 10 per check on 2 cores): then workers retire


def name_os_thread(name: str) -> None:
    """Give the calling thread its Python name in the kernel too (15 bytes), so
    that `top -H`, `ps -L` and /proc/PID/task/*/comm tell the IO loops and the
    workers apart (CPython sets OS thread names only from 3.14). Best effort."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass


class GcClock:
    """Seconds spent in the garbage collector, from gc.callbacks. On 3.13t a
    collection stops every thread and walks the whole heap, while the other cores
    idle: a burst of allocations (10,000 WebSocket opens) then looks like workers
    blocked with idle CPU, and more threads would not help. Collections never
    overlap, so the callback's plain float updates need no lock."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._started = now
        elif self._started:
            self.total += now - self._started


class CpuMeter:
    """The share of the CPU that more threads could use that was busy since the
    last call. Free-threaded: the machine's CPU time, from /proc/stat on Linux
    (every process counts: a load generator on the same machine too), else this
    process's over the available cores. With the GIL, Python runs on one core at
    a time: this process's CPU time over one core."""

    def __init__(self) -> None:
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        self._cores = 1 if gil else available_cores()
        self._proc_stat = not gil and os.path.exists("/proc/stat")
        self._last = self._sample()

    def _sample(self) -> tuple[float, float]:
        """(busy, total) seconds, cumulative."""
        if self._proc_stat:
            try:
                with open("/proc/stat", "rb") as f:
                    fields = [int(x) for x in f.readline().split()[1:]]
                idle = fields[3] + fields[4]  # idle + iowait
                total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
                tick = os.sysconf("SC_CLK_TCK")
                return (total - idle) / tick, total / tick
            except (OSError, ValueError, IndexError):
                self._proc_stat = False
        return time.process_time(), time.monotonic() * self._cores

    def busy_share(self) -> float:
        busy, total = self._sample()
        last_busy, last_total = self._last
        self._last = busy, total
        elapsed = total - last_total
        return (busy - last_busy) / elapsed if elapsed > 0 else 1.0


class WorkerPool[T]:
    """Threads looping `run(ring.get())` until told to stop; see the module's
    contract. `run` must not raise; if it does anyway, the error is logged and
    the worker goes on with the next task. `per_thread`, if given, makes each
    thread's own `run` once, when it starts (state of the thread's own, found
    without a shared lookup per task)."""

    def __init__(
        self,
        ring: TaskRing[T],
        run: Callable[[T], None],
        *,
        per_thread: Callable[[], Callable[[T], None]] | None = None,
        min_workers: int,
        max_workers: int,
        idle_timeout: float,
    ) -> None:
        self.ring = ring
        self.min_workers = min_workers
        self.max_workers = max_workers
        self._run = run
        self._per_thread = per_thread
        self._idle_timeout = idle_timeout if max_workers > min_workers else None
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._started = 0  # for thread names
        self._stopping = False
        self._stop = threading.Event()
        self._manager: threading.Thread | None = None
        # Workers the manager wants retired: set under _lock by the manager, taken
        # under it by workers finishing a task (read without it first: a stale read
        # only delays a retirement by one task).
        self._retire_wanted = 0

    @property
    def size(self) -> int:
        """Worker threads alive now."""
        return len(self._threads)

    def start(self) -> None:
        self._grow(self.min_workers)
        if self.max_workers > self.min_workers:
            self._manager = threading.Thread(target=self._manage, name="mummy-pool", daemon=True)
            self._manager.start()

    def _grow(self, count: int) -> None:
        with self._lock:
            count = min(count, self.max_workers - len(self._threads))
            if self._stopping or count <= 0:
                return
            for _ in range(count):
                self._started += 1
                thread = threading.Thread(
                    target=self._loop, name=f"mummy-worker-{self._started}", daemon=True
                )
                self._threads.add(thread)
                thread.start()

    def _manage(self) -> None:
        meter, gc_clock = CpuMeter(), GcClock()
        gc.callbacks.append(gc_clock)
        try:
            self._watch(meter, gc_clock)
        finally:
            gc.callbacks.remove(gc_clock)

    def _watch(self, meter: CpuMeter, gc_clock: GcClock) -> None:
        waited = False
        recent: deque[float] = deque(maxlen=SHRINK_AFTER_CHECKS)  # busy shares
        in_gc = gc_clock.total
        while not self._stop.wait(CHECK_SECONDS):
            busy = meter.busy_share()
            gc_share = (gc_clock.total - in_gc) / CHECK_SECONDS
            in_gc = gc_clock.total
            size = len(self._threads)
            # Not in_flight - size: in_flight also counts finished tasks whose
            # message the IO thread has not taken yet, and a busy IO thread (a burst
            # of WebSocket opens) lags on those while every worker is idle.
            waiting = self.ring.queued
            # Tasks waited at the last check too, so the CPU was measured while work
            # was pending (a burst after idle time is not mistaken for blocked
            # workers). Grow by at most the pool's size per check: it doubles
            # towards what the load needs and does not overshoot on one burst.
            if waiting > 0 and waited and busy < GROW_BELOW_BUSY and gc_share < GROW_BELOW_GC:
                self._grow(min(waiting, size))
            # A pool grown for blocking handlers stays busy when the load turns to
            # computing (every thread keeps taking tasks, none idles for idle_timeout):
            # while the CPU stays saturated, workers retire, down to the floor.
            recent.append(busy)
            if (
                len(recent) == SHRINK_AFTER_CHECKS
                and sum(recent) >= SHRINK_ABOVE_BUSY * SHRINK_AFTER_CHECKS
                and size > self.min_workers
            ):
                # A quarter of the excess a check: ~12 checks from 100 threads to 4
                # (checks come late when many threads are runnable).
                with self._lock:
                    self._retire_wanted = max(1, (size - self.min_workers) // 4)
            elif self._retire_wanted:
                with self._lock:
                    self._retire_wanted = 0  # no longer saturated: keep who is left
            waited = waiting > 0

    def _retire(self, wanted: bool = False) -> bool:
        """An idle worker (or, `wanted`, one the manager asked for) leaves if the pool
        stays at or above min_workers."""
        with self._lock:
            if wanted:
                if self._retire_wanted <= 0:
                    return False  # other workers took them
                self._retire_wanted -= 1
            if self._stopping or len(self._threads) <= self.min_workers:
                return False
            self._threads.discard(threading.current_thread())
            return True

    def _loop(self) -> None:
        name_os_thread(threading.current_thread().name)
        get = self.ring.get
        run = self._run if self._per_thread is None else self._per_thread()
        idle_timeout = self._idle_timeout
        while True:
            try:
                task = get(idle_timeout)
            except Empty:
                if self._retire():
                    return
                continue
            if task is None:
                return
            try:
                run(task)
            except BaseException:
                log.exception("worker task failed")
            if self._retire_wanted and self._retire(wanted=True):
                return

    def stop(self, deadline: float) -> bool:
        """Ask every worker to stop after its current task; wait until `deadline`
        (a time.monotonic() value). True if all stopped in time."""
        with self._lock:
            self._stopping = True
            threads = list(self._threads)
        self._stop.set()
        self.ring.stop_workers(len(threads))
        for t in threads:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)
