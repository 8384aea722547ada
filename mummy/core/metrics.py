"""Counts for Prometheus (`serve(..., metrics_port=P)`), kept without a lock on the
request path.

Concurrency contract: each worker thread writes only its own `WorkerCounts` (found
through a thread-local, registered once under `_lock` when the thread first counts);
each IO loop writes only its own counters (mummy.core.loop). The scrape thread reads
them all: a dict is copied with `dict(...)`, one call that the dict's own lock (3.13t)
or the GIL makes atomic, and an int or float read is atomic on both builds. A scrape
may see one thread's request counted a moment before its duration: the next scrape
sees both. A retired worker's counts stay in the list, so every total only grows.
"""

from __future__ import annotations

import threading

# The request-duration histogram's upper bounds, seconds (prometheus_client's defaults
# from 1 ms, as granian and uvicorn exporters use).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Any other method is counted as "other": a client must not grow the label set.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
_METHOD_INDEX = {method: i for i, method in enumerate(METHODS)}
_OTHER = len(METHODS) - 1
PROTOCOLS = ("http1", "http2")
_CLASSES = 6  # status // 100: 0..5
SLOTS = len(METHODS) * _CLASSES * len(PROTOCOLS)


def labels(index: int) -> tuple[str, int, str]:
    """(method, status class, protocol) of a `WorkerCounts.requests` index."""
    rest, h2 = divmod(index, 2)
    method, status = divmod(rest, _CLASSES)
    return METHODS[method], status, PROTOCOLS[h2]


class WorkerCounts:
    """One worker thread's counts (written by it alone)."""

    __slots__ = (
        "_bounds",
        "_methods",
        "buckets",
        "finished",
        "requests",
        "seconds",
        "shed",
        "started",
    )

    def __init__(self) -> None:
        self.requests = [0] * SLOTS  # see request() and labels()
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one: above every bound
        self.seconds = 0.0
        self.shed = 0  # answered 503 by queue_timeout
        self.started = 0  # tasks of any kind begun, and ended: busy = started - finished
        self.finished = 0
        # This thread's own copies: on 3.13t every thread touching one shared object
        # (a module's tuple or dict, bisect_left) updates its reference count
        # atomically, and the cores pass that cache line around on every request.
        self._bounds = tuple(float(b) for b in BUCKETS)
        self._methods = dict(_METHOD_INDEX)

    def request(self, method: str, http2: bool, status: int, seconds: float) -> None:
        status_class = status // 100
        if status_class > 5:
            status_class = 5
        index = self._methods.get(method, 7) * 6 + status_class  # _OTHER, _CLASSES: no globals
        self.requests[index * 2 + http2] += 1
        bucket = 0
        for bound in self._bounds:  # most answers fall in the first bucket or two
            if seconds <= bound:
                break
            bucket += 1
        self.buckets[bucket] += 1
        self.seconds += seconds


class Metrics:
    """Every worker's counts, for the collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[WorkerCounts] = []
        self._local = threading.local()

    def mine(self) -> WorkerCounts:
        """The calling thread's counts (made on its first call)."""
        counts: WorkerCounts | None = getattr(self._local, "counts", None)
        if counts is None:
            counts = self._local.counts = WorkerCounts()
            with self._lock:
                self._all.append(counts)
        return counts

    def totals(self) -> WorkerCounts:
        """The sum over every thread, now."""
        with self._lock:
            every = list(self._all)
        total = WorkerCounts()
        for counts in every:
            for i, value in enumerate(list(counts.requests)):
                total.requests[i] += value
            for i, value in enumerate(list(counts.buckets)):
                total.buckets[i] += value
            total.seconds += counts.seconds
            total.shed += counts.shed
            # finished first: a task that ends between the two reads is then not
            # counted as finished but unstarted (a busy count below zero).
            finished = counts.finished
            total.started += counts.started
            total.finished += finished
        return total
