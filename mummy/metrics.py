"""Prometheus metrics of a running Server: `serve(..., metrics_port=P)` or
`python -m mummy APP --metrics-port P` (needs `pip install mummy-server[metrics]`).

`GET /metrics` on its own listener (never the app's port), in the Prometheus text
format, served by `prometheus_client` on a thread of its own. The counts are not
prometheus_client's locked counters: workers and IO loops keep their own, without a
lock (mummy.core.metrics), and a collector adds them up at scrape time into a
snapshot, a plain dict, from which the metric families are made.

With `--processes`, the supervisor serves the one /metrics: each child sends its
snapshot (cumulative counts and its gauges) to the supervisor over a pipe every
PUSH_EVERY_S and once more as it exits (`push_snapshots`); the supervisor keeps the
latest per child (`Aggregate`), replacing, never adding, so nothing is counted twice,
and folds a child's last counts into a retired total when it exits, so the totals
never go down. A child killed outright loses the counts since its last push.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mummy.core.metrics import BUCKETS, labels
from mummy.core.sse import SseEngine
from mummy.errors import MummyError

if TYPE_CHECKING:
    from mummy.server import Server

try:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
except ImportError:  # pragma: no cover - the extra is not installed
    prometheus_client_missing = True
else:
    prometheus_client_missing = False

PROTOCOLS = ("http1", "http2", "websocket", "tls_handshake")
PUSH_EVERY_S = 1.0
Snapshot = dict[str, Any]
COUNTERS = ("buckets", "seconds", "shed", "bytes_sent")  # and "requests"


class LoopClock:
    """Each IO thread's CPU time over wall time since the last reading (its CPU clock,
    read from another thread: nothing on the loop's path)."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._lock = threading.Lock()  # scrapes may overlap (a thread per scrape)
        self._last: dict[int, tuple[float, float]] = {}

    def ratios(self) -> dict[str, float]:
        server, out = self._server, {}
        with self._lock:
            for loop, thread in zip(server._loops, server._io_threads, strict=True):
                if thread.ident is None or not thread.is_alive():
                    continue
                try:
                    cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
                except OSError:
                    continue
                wall = time.monotonic()
                last_wall, last_cpu = self._last.get(loop.index, (server._started_at, 0.0))
                self._last[loop.index] = (wall, cpu)
                if wall > last_wall:
                    out[str(loop.index)] = (cpu - last_cpu) / (wall - last_wall)
        return out


def snapshot(server: Server, clock: LoopClock) -> Snapshot | None:
    """Every count of `server` now, as JSON-ready data; None before it started."""
    loops, pool, metrics = server._loops, server._pool, server._metrics
    if pool is None or metrics is None:
        return None
    totals = metrics.totals()
    connections = {}
    for protocol in PROTOCOLS:
        opened = sum(dict(loop.opened).get(protocol, 0) for loop in loops)
        connections[protocol] = opened - sum(dict(loop.ended).get(protocol, 0) for loop in loops)
    streams = [stream for loop in loops for stream in loop.streams.snapshot()]
    return {
        "requests": [[*labels(i), n] for i, n in enumerate(totals.requests) if n],
        "buckets": totals.buckets,
        "seconds": totals.seconds,
        "shed": totals.shed,
        "bytes_sent": sum(loop.bytes_sent for loop in loops),
        "connections": connections,
        "websockets": sum(len(loop.websockets) for loop in loops),
        "sse_streams": sum(isinstance(stream, SseEngine) for stream in streams),
        "queue_depth": pool.ring.queued,
        "workers": pool.size,
        "workers_busy": max(0, totals.started - totals.finished),
        "loops": clock.ratios(),
    }


def families(snap: Snapshot) -> Iterator[Metric]:
    """The metric families of a snapshot (one process's, or all children's added up)."""
    requests = CounterMetricFamily(
        "mummy_requests",
        "HTTP requests answered, by method, status class and protocol",
        labels=["method", "status", "protocol"],
    )
    for method, status, protocol, count in snap["requests"]:
        requests.add_metric([method, f"{status}xx", protocol], count)
    yield requests
    cumulative, buckets = 0, []
    for bound, count in zip((*map(str, BUCKETS), "+Inf"), snap["buckets"], strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    duration = HistogramMetricFamily(
        "mummy_request_duration_seconds",
        "From a request's arrival (complete) to its response, queueing included",
    )
    duration.add_metric([], buckets, snap["seconds"])
    yield duration
    connections = GaugeMetricFamily(
        "mummy_connections", "Open connections, by protocol", labels=["protocol"]
    )
    for protocol in PROTOCOLS:
        connections.add_metric([protocol], snap["connections"].get(protocol, 0))
    yield connections
    gauges = {
        "websockets": "Open WebSockets",
        "sse_streams": "Open event streams",
        "queue_depth": "Tasks waiting for a worker",
        "workers": "Worker threads",
        "workers_busy": "Workers running a task",
    }
    for key, text in gauges.items():
        yield GaugeMetricFamily(f"mummy_{key}", text, value=snap[key])
    ratio = GaugeMetricFamily(
        "mummy_io_loop_busy_ratio",
        "Share of the time each IO thread ran on a CPU (since the previous scrape; with "
        "--processes, over the child's last push interval)",
        labels=["loop"],
    )
    for loop, value in sorted(snap["loops"].items()):
        ratio.add_metric([loop], value)
    yield ratio
    yield CounterMetricFamily(
        "mummy_responses_shed",
        "Requests answered 503 because they waited longer than queue_timeout",
        value=snap["shed"],
    )
    yield CounterMetricFamily(
        "mummy_bytes_sent", "Bytes written to sockets", value=snap["bytes_sent"]
    )


class ServerCollector:
    """A `prometheus_client` collector of one Server, read at each scrape."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._clock = LoopClock(server)

    def collect(self) -> Iterator[Metric]:
        snap = snapshot(self._server, self._clock)
        if snap is not None:
            yield from families(snap)


class Aggregate:
    """The supervisor's view: the latest snapshot of each live child, and the counts
    of the children gone. Its own lock: the supervisor's loop writes, scrapes read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, Snapshot] = {}  # child pid -> its latest snapshot
        self._retired: Snapshot = empty()

    def update(self, pid: int, snap: Snapshot) -> None:
        with self._lock:
            self._live[pid] = snap

    def retire(self, pid: int) -> None:
        """The child `pid` exited: its counts stay, its gauges go."""
        with self._lock:
            snap = self._live.pop(pid, None)
            if snap is not None:
                self._retired = add_counters(self._retired, snap)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            live = dict(self._live)
            total = self._retired
        total = {**total, "connections": {}, "loops": {}}
        for key in ("websockets", "sse_streams", "queue_depth", "workers", "workers_busy"):
            total[key] = 0
        for pid, snap in sorted(live.items()):
            total = add_counters(total, snap)
            for protocol, count in snap["connections"].items():
                total["connections"][protocol] = total["connections"].get(protocol, 0) + count
            for key in ("websockets", "sse_streams", "queue_depth", "workers", "workers_busy"):
                total[key] += snap[key]
            for loop, value in snap["loops"].items():
                total["loops"][f"{pid}.{loop}"] = value  # the child's pid, its loop
        yield from families(total)


def empty() -> Snapshot:
    return {
        "requests": [],
        "buckets": [0] * (len(BUCKETS) + 1),
        "seconds": 0.0,
        "shed": 0,
        "bytes_sent": 0,
    }


def add_counters(a: Snapshot, b: Snapshot) -> Snapshot:
    """`a` with `b`'s counters added (a new dict; gauges are `a`'s)."""
    requests: dict[tuple[str, int, str], int] = {}
    for method, status, protocol, count in (*a["requests"], *b["requests"]):
        key = (method, status, protocol)
        requests[key] = requests.get(key, 0) + count
    return {
        **a,
        "requests": [[*key, n] for key, n in sorted(requests.items())],
        "buckets": [x + y for x, y in zip(a["buckets"], b["buckets"], strict=True)],
        "seconds": a["seconds"] + b["seconds"],
        "shed": a["shed"] + b["shed"],
        "bytes_sent": a["bytes_sent"] + b["bytes_sent"],
    }


def serve_metrics(collector: object, port: int, address: str) -> Any:
    """Serve `collector` on http://address:port/metrics; returns the HTTP server (its
    `shutdown()` stops it)."""
    if prometheus_client_missing:
        raise MummyError(
            "metrics_port needs prometheus_client: pip install 'mummy-server[metrics]'"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    try:
        httpd, _thread = start_http_server(port, address, registry=registry)
    except OSError as exc:
        raise MummyError(
            f"cannot serve metrics on {address}:{port}: {exc.strerror}; pick another metrics_port"
        ) from None
    return httpd


def start_exporter(server: Server, port: int, address: str) -> Any:
    return serve_metrics(ServerCollector(server), port, address)


def push_snapshots(server: Server, fd: int) -> None:
    """A supervised child's thread: a JSON line with its snapshot on `fd` every
    PUSH_EVERY_S, and a last one once the server has stopped."""
    clock = LoopClock(server)
    with os.fdopen(fd, "w", buffering=1) as pipe:
        try:
            while not server._stopped.wait(PUSH_EVERY_S):
                if (snap := snapshot(server, clock)) is not None:
                    pipe.write(json.dumps(snap) + "\n")
            if (snap := snapshot(server, clock)) is not None:
                pipe.write(json.dumps(snap) + "\n")
        except (BrokenPipeError, OSError):
            pass  # the supervisor is gone
