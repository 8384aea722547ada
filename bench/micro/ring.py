#!/usr/bin/env python3
"""Microbenchmark: the hand-off between threads, SimpleQueue vs a pure-Python slot ring.

Run with each interpreter (or `./bench/run --only micro`):
    .venv-ft/bin/python bench/micro/ring.py [--items N] [--json]
    .venv-gil/bin/python bench/micro/ring.py
Prints items/s for 1 producer -> N consumers -> 1 collector, the server's shape; with
--json, one JSON object {case: items/s}.
"""

import argparse
import json
import sys
import threading
import time
from queue import SimpleQueue

from mummy.core.ring import Mailbox, TaskRing


class SlotRing:
    """A classic bounded ring of slots: one lock, two conditions (the alternative we measured)."""

    def __init__(self, capacity: int) -> None:
        self._slots: list[object] = [None] * capacity
        self._head = 0
        self._tail = 0
        self._count = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, item: object) -> None:
        with self._not_full:
            while self._count == len(self._slots):
                self._not_full.wait()
            self._slots[self._tail] = item
            self._tail = (self._tail + 1) % len(self._slots)
            self._count += 1
            self._not_empty.notify()

    def get(self) -> object:
        with self._not_empty:
            while self._count == 0:
                self._not_empty.wait()
            item = self._slots[self._head]
            self._head = (self._head + 1) % len(self._slots)
            self._count -= 1
            self._not_full.notify()
            return item


def pipeline(put, get, items: int, consumers: int) -> float:
    """Producer puts `items`, consumers pass them to a SimpleQueue collector; items/s."""
    out: SimpleQueue[object] = SimpleQueue()

    def consume() -> None:
        while (item := get()) is not None:
            out.put(item)

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for i in range(items):
        put(i)
    for _ in range(items):
        out.get()
    elapsed = time.perf_counter() - start
    for _ in threads:
        put(None)
    for t in threads:
        t.join()
    return items / elapsed


def mummy_ring(items: int, consumers: int) -> float:
    """The server's own path: TaskRing out, Mailbox (eventfd-batched) back."""
    import select

    ring: TaskRing[int] = TaskRing(1024)
    mailbox: Mailbox[int] = Mailbox()
    poller = select.epoll()
    poller.register(mailbox.fd, select.EPOLLIN)

    def consume() -> None:
        while (item := ring.get()) is not None:
            mailbox.post(item)

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    sent = done = 0
    while done < items:
        while sent < items and ring.put(sent):
            sent += 1
        poller.poll(1.0)
        for _ in mailbox.drain():
            ring.done()
            done += 1
    elapsed = time.perf_counter() - start
    ring.stop_workers(consumers)
    for t in threads:
        t.join()
    mailbox.close()
    return items / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    items, consumers = args.items, 8
    q: SimpleQueue[object] = SimpleQueue()
    ring = SlotRing(1024)
    results = {
        "SimpleQueue": pipeline(q.put, q.get, items, consumers),
        "SlotRing (lock + conditions)": pipeline(ring.put, ring.get, items, consumers),
        "mummy TaskRing + Mailbox": mummy_ring(items, consumers),
    }
    if args.json:
        print(json.dumps(results))
        return
    gil = "GIL" if getattr(sys, "_is_gil_enabled", lambda: True)() else "free-threaded"
    print(f"Python {sys.version.split()[0]} ({gil}), {items} items, {consumers} consumers")
    for name, rate in results.items():
        print(f"{name:32} {rate:>12,.0f} items/s")


if __name__ == "__main__":
    main()
