"""The worker pool: `workers=N` is exactly N threads; the default adaptive pool grows
while handlers block and requests wait, stays put while the CPU is busy, and shrinks
back to `min_workers` once idle."""

import gc
import http.client
import logging
import threading

import pytest

import mummy
from mummy.core.config import available_cores
from mummy.core.workers import GcClock
from tests.servers import HANG_S, wait_for


def worker_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("mummy-worker-"))


def get(port: int, path: str = "/") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_S)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def get_until(stop: threading.Event, port: int, path: str, each=lambda: None) -> int:
    """GET `path` on one keep-alive connection until `stop`; calls `each` after every
    response; returns how many there were."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_S)
    count = 0
    while not stop.is_set():
        conn.request("GET", path)
        conn.getresponse().read()
        count += 1
        each()
    conn.close()
    return count


def in_parallel(count: int, call) -> list[object]:
    results: list[object] = [None] * count

    def one(i: int) -> None:
        results[i] = call()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_S)
    return results


def test_a_fixed_pool_is_exactly_n_threads_under_blocking_load(serve) -> None:
    before = worker_threads()
    release = threading.Event()
    running = []

    def handler(request: mummy.Request) -> None:
        running.append(1)
        release.wait(HANG_S)
        request.respond(200, {}, b"ok")

    server = serve(handler, workers=3)
    assert (server.workers, server.min_workers, server.max_workers) == (3, 3, 3)
    assert worker_threads() - before == 3
    clients = threading.Thread(target=in_parallel, args=(12, lambda: get(server.port)))
    clients.start()
    assert wait_for(lambda: len(running) == 3)
    # Nine requests wait for a worker: the pool must not grow. Stated wait: 0.5 s
    # (ten of the adaptive pool's checks), then the state.
    release.wait(0.5)
    assert worker_threads() - before == 3 and len(running) == 3
    release.set()
    clients.join(HANG_S)
    assert len(running) == 12


def test_the_adaptive_pool_grows_while_handlers_block_and_shrinks_when_idle(serve) -> None:
    before = worker_threads()
    # Only 20 handlers running at once pass this barrier: the pool must grow from 2.
    barrier = threading.Barrier(20)

    def handler(request: mummy.Request) -> None:
        if request.path == "/together":
            barrier.wait(HANG_S)
        request.respond(200, {}, b"ok")

    server = serve(handler, workers=None, min_workers=2, max_workers=64, worker_idle_timeout=0.3)
    assert (server.workers, server.min_workers, server.max_workers) == (None, 2, 64)
    assert worker_threads() - before == 2
    assert in_parallel(20, lambda: get(server.port, "/together")) == [200] * 20
    # Idle for worker_idle_timeout: back to min_workers, not below, and still serving.
    assert wait_for(lambda: worker_threads() - before == 2)
    assert get(server.port) == 200


def test_the_adaptive_pool_does_not_grow_while_the_cpu_is_busy(serve) -> None:
    before = worker_threads()
    cores = available_cores()
    stop = threading.Event()

    def handler(request: mummy.Request) -> None:
        total = 0
        for i in range(30_000):  # a few ms of Python
            total += i * i % 7
        request.respond(200, {}, str(total))

    # One worker per core keeps every core busy; 4 clients per worker keep requests waiting.
    server = serve(handler, workers=None, min_workers=cores, max_workers=64)
    peak = [0]

    def note_peak() -> None:
        peak[0] = max(peak[0], worker_threads() - before)

    def client() -> int:
        return get_until(stop, server.port, "/", note_peak)

    clients = threading.Thread(target=in_parallel, args=(4 * cores, client))
    clients.start()
    # Stated wait: 1.5 s of saturating load (30 of the pool's checks), then the state.
    stop.wait(1.5)
    stop.set()
    clients.join(HANG_S)
    assert peak[0] == cores


def test_a_pool_grown_for_blocking_handlers_shrinks_when_the_cpu_saturates(serve) -> None:
    """Grown to 20 by handlers that block, then a computing load where every thread stays
    busy (none idles for worker_idle_timeout, a minute here): with the CPU saturated the
    pool retires a worker a check, down to min_workers, and keeps serving."""
    before = worker_threads()
    cores = available_cores()
    barrier = threading.Barrier(20)
    stop = threading.Event()

    def handler(request: mummy.Request) -> None:
        if request.path == "/together":
            barrier.wait(HANG_S)
        else:
            total = 0
            for i in range(30_000):  # a few ms of Python
                total += i * i % 7
        request.respond(200, {}, b"ok")

    server = serve(handler, workers=None, min_workers=2, max_workers=64, worker_idle_timeout=60)
    assert in_parallel(20, lambda: get(server.port, "/together")) == [200] * 20
    assert worker_threads() - before >= 20

    def client() -> int:
        return get_until(stop, server.port, "/cpu")

    clients = threading.Thread(target=in_parallel, args=(4 * cores, client))
    clients.start()
    try:
        shrunk = wait_for(lambda: worker_threads() - before == 2)
    finally:
        stop.set()
        clients.join(HANG_S)
    assert shrunk, f"{worker_threads() - before} workers under a saturating load"
    assert get(server.port, "/cpu") == 200


def test_the_startup_line_says_what_the_pool_is(serve, caplog) -> None:
    def handler(request: mummy.Request) -> None:
        request.respond(200, {}, b"ok")

    with caplog.at_level(logging.INFO, logger="mummy"):
        serve(handler, workers=None, min_workers=3, max_workers=9, worker_idle_timeout=5)
        serve(handler, workers=5)
    lines = [r.getMessage() for r in caplog.records if "listening" in r.getMessage()]
    assert "adaptive pool of 3-9 workers, idle ones retire after 5 s" in lines[0]
    assert "(5 workers," in lines[1]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"workers": 4, "min_workers": 2}, "workers=4 fixes the pool"),
        ({"workers": 4, "max_workers": 8}, "workers=4 fixes the pool"),
        ({"min_workers": 8, "max_workers": 4}, "max_workers (4) must be >= min_workers (8)"),
        ({"min_workers": 0}, "min_workers must be a positive int"),
        ({"workers": 0}, "workers must be a positive int"),
        ({"worker_idle_timeout": 0}, "worker_idle_timeout must be a number of seconds > 0"),
    ],
)
def test_pool_options_that_make_no_sense_say_what_to_do(options, says) -> None:
    with pytest.raises(mummy.MummyError, match=says.replace("(", r"\(").replace(")", r"\)")):
        mummy.Server(lambda request: None, **options)


def test_the_gc_clock_counts_time_in_collections() -> None:
    """What keeps the pool from growing while the collector stops every thread (on 3.13t
    it walks the whole heap: 10,000 open WebSockets made it grow to 256 threads)."""
    clock = GcClock()
    gc.callbacks.append(clock)
    try:
        garbage = [[i] for i in range(300_000)]  # a heap worth walking
        gc.collect()
        first = clock.total
        gc.collect()
    finally:
        gc.callbacks.remove(clock)
    del garbage
    assert 0 < first < clock.total < 60
