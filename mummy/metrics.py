"""Prometheus metrics of a running Server: `serve(..., metrics_port=P)` or
`python -m mummy APP --metrics-port P` (needs `pip install mummy-server[metrics]`).

`GET /metrics` on its own listener (never the app's port), in the Prometheus text
format, served by `prometheus_client` on a thread of its own. The counts are not
prometheus_client's locked counters: workers and IO loops keep their own, without a
lock (mummy.core.metrics), and `ServerCollector` adds them up at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mummy.core.metrics import BUCKETS
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


class ServerCollector:
    """A `prometheus_client` collector reading a Server's counts at each scrape."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._lock = threading.Lock()  # scrapes may overlap (one thread per scrape)
        self._cpu: dict[int, tuple[float, float]] = {}  # loop -> (wall, thread CPU) last scrape

    def collect(self) -> Iterator[Metric]:
        server = self._server
        loops, pool, metrics = server._loops, server._pool, server._metrics
        if pool is None or metrics is None:
            return
        totals = metrics.totals()
        requests = CounterMetricFamily(
            "mummy_requests",
            "HTTP requests answered, by method, status class and protocol",
            labels=["method", "status", "protocol"],
        )
        for (method, status, protocol), count in sorted(totals.requests.items()):
            requests.add_metric([method, f"{status}xx", protocol], count)
        yield requests
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), totals.buckets, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        duration = HistogramMetricFamily(
            "mummy_request_duration_seconds",
            "From a request's arrival (complete) to its response, queueing included",
        )
        duration.add_metric([], buckets, totals.seconds)
        yield duration
        connections = GaugeMetricFamily(
            "mummy_connections", "Open connections, by protocol", labels=["protocol"]
        )
        for protocol in PROTOCOLS:
            opened = sum(dict(loop.opened).get(protocol, 0) for loop in loops)
            ended = sum(dict(loop.ended).get(protocol, 0) for loop in loops)
            connections.add_metric([protocol], opened - ended)
        yield connections
        websockets = sum(len(loop.websockets) for loop in loops)
        yield GaugeMetricFamily("mummy_websockets", "Open WebSockets", value=websockets)
        sse = sum(
            1
            for loop in loops
            for stream in loop.streams.snapshot()
            if isinstance(stream, SseEngine)
        )
        yield GaugeMetricFamily("mummy_sse_streams", "Open event streams", value=sse)
        waiting = pool.ring.queued
        yield GaugeMetricFamily("mummy_queue_depth", "Tasks waiting for a worker", value=waiting)
        yield GaugeMetricFamily("mummy_workers", "Worker threads", value=pool.size)
        busy = max(0, totals.started - totals.finished)
        yield GaugeMetricFamily("mummy_workers_busy", "Workers running a task", value=busy)
        yield self._busy_ratios()
        yield CounterMetricFamily(
            "mummy_responses_shed",
            "Requests answered 503 because they waited longer than queue_timeout",
            value=totals.shed,
        )
        sent = sum(loop.bytes_sent for loop in loops)
        yield CounterMetricFamily("mummy_bytes_sent", "Bytes written to sockets", value=sent)

    def _busy_ratios(self) -> Metric:
        """Each IO thread's CPU time over wall time since the previous scrape (since it
        started, at the first), read from its CPU clock: nothing on the loop's path."""
        ratio = GaugeMetricFamily(
            "mummy_io_loop_busy_ratio",
            "Share of the time each IO thread ran on a CPU since the previous scrape",
            labels=["loop"],
        )
        with self._lock:
            for loop, thread in zip(self._server._loops, self._server._io_threads, strict=True):
                if thread.ident is None or not thread.is_alive():
                    continue
                try:
                    cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
                except OSError:
                    continue
                wall = time.monotonic()
                last_wall, last_cpu = self._cpu.get(loop.index, (self._server._started_at, 0.0))
                self._cpu[loop.index] = (wall, cpu)
                if wall > last_wall:
                    ratio.add_metric([str(loop.index)], (cpu - last_cpu) / (wall - last_wall))
        return ratio


def start_exporter(server: Server, port: int, address: str) -> Any:
    """Serve `server`'s metrics on http://address:port/metrics; returns the HTTP server
    (its `shutdown()` stops it)."""
    if prometheus_client_missing:
        raise MummyError(
            "metrics_port needs prometheus_client: pip install 'mummy-server[metrics]'"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    try:
        httpd, _thread = start_http_server(port, address, registry=registry)
    except OSError as exc:
        raise MummyError(
            f"cannot serve metrics on {address}:{port}: {exc.strerror}; pick another metrics_port"
        ) from None
    return httpd
