"""`Server`: your handler on a pool of workers, all socket IO on an IO loop.

Start, serve, close and signals over a checked, frozen `ServerConfig`; the
engine is `mummy.core` (the loop and its protocol drivers, the ring, the worker
runtime).
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from mummy.core.config import DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, ServerConfig
from mummy.core.listener import make_listeners
from mummy.core.loop import EventLoop
from mummy.core.messages import (
    H2Refuse,
    H2Task,
    Http1Response,
    StreamCancel,
    StreamTask,
    Task,
    TlsStep,
    TlsTask,
    WebSocketEvent,
    WebSocketTask,
)
from mummy.core.metrics import Metrics
from mummy.core.protocols import connection_driver
from mummy.core.response import error_response
from mummy.core.ring import TaskRing
from mummy.core.runtime import WorkerRuntime
from mummy.core.sse import SseEngine
from mummy.core.streams import ResponseStream
from mummy.core.tls import server_context
from mummy.core.workers import WorkerPool, name_os_thread
from mummy.core.wsengine import WebSocketEngine
from mummy.errors import MummyError
from mummy.request import Request, ResponseContext
from mummy.websocket import Event, Message, WebSocket

log = logging.getLogger("mummy")

Handler = Callable[[Request], None]

# After close()'s deadline, how long cancelled streams get to close their iterators.
STREAM_CLOSE_GRACE_S = 1.0
# close(): requests still queued this long before the deadline are refused (503),
# leaving the refusals time to reach their clients. At most half the timeout.
REFUSAL_MARGIN_S = 1.0
DRAIN_POLL_S = 0.005
WebSocketHandler = Callable[[WebSocket, Event, Message | None], None]


class Server:
    """An HTTP/1.1, HTTP/2 and WebSocket server: socket IO on one thread, handlers
    on a pool of workers.

    >>> server = mummy.Server(handler)
    >>> server.serve(8080)  # blocks; Ctrl-C stops it gracefully

    The default worker pool adapts: `min_workers` threads (2 x CPUs) that grow
    up to `max_workers` (256) while requests wait and the CPU is idle, that is,
    while handlers block (sleep, query a database), and shrink back after
    `worker_idle_timeout` seconds idle. `workers=N` fixes the pool at exactly N.
    Every option is readable as an attribute (`server.workers`, which is None for
    the adaptive pool, `server.min_workers`, `server.http2`...).
    """

    def __init__(
        self,
        handler: Handler,
        websocket_handler: Callable[[WebSocket, Event, Message | None], None] | None = None,
        *,
        workers: int | None = None,
        min_workers: int | None = None,
        max_workers: int | None = None,
        worker_idle_timeout: float = 30.0,
        max_headers_len: int = 8192,
        max_body_len: int = 1 << 20,
        max_message_len: int = 1 << 16,
        log_handler: logging.Handler | None = None,
        compress: bool = True,
        compress_min_size: int = 860,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
        zstd_level: int = DEFAULT_ZSTD_LEVEL,
        access_log: bool = False,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keep_alive_timeout: float = 30.0,
        queue_timeout: float | None = None,
        max_connections: int = 50_000,
        max_pending_requests: int = 4096,
        websocket_send_buffer_len: int = 1 << 20,
        websocket_ping_interval: float | None = None,
        websocket_close_timeout: float = 5.0,
        websocket_compression: bool | str = True,
        websocket_compress_min_size: int = 1024,
        http2: bool = True,
        h2_max_concurrent_streams: int = 100,
        stream_buffer_len: int = 256 * 1024,
        sse_send_buffer_len: int = 1 << 20,
        sse_keepalive_interval: float | None = 15.0,
        forwarded_allow_ips: str | list[str] | None = None,
        io_threads: int = 1,
    ) -> None:
        if not callable(handler):
            raise MummyError(
                f"the request handler must be callable (a function or a Router), got {handler!r}"
            )
        if websocket_handler is not None and not callable(websocket_handler):
            raise MummyError(f"websocket_handler must be callable, got {websocket_handler!r}")
        if log_handler is not None and not isinstance(log_handler, logging.Handler):
            raise MummyError(f"log_handler must be a logging.Handler, got {log_handler!r}")
        self.handler = handler
        self.websocket_handler = websocket_handler
        self.config = ServerConfig(
            workers=workers,
            min_workers=min_workers,
            max_workers=max_workers,
            worker_idle_timeout=worker_idle_timeout,
            max_headers_len=max_headers_len,
            max_body_len=max_body_len,
            max_message_len=max_message_len,
            compress=compress,
            compress_min_size=compress_min_size,
            gzip_level=gzip_level,
            zstd_level=zstd_level,
            access_log=access_log,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            keep_alive_timeout=keep_alive_timeout,
            queue_timeout=queue_timeout,
            max_connections=max_connections,
            max_pending_requests=max_pending_requests,
            websocket_send_buffer_len=websocket_send_buffer_len,
            websocket_ping_interval=websocket_ping_interval,
            websocket_close_timeout=websocket_close_timeout,
            websocket_compression=websocket_compression,
            websocket_compress_min_size=websocket_compress_min_size,
            # HTTP/2 needs the optional h2 package (pip install mummy-server[h2]).
            http2=bool(http2) and _h2_installed(),
            h2_max_concurrent_streams=h2_max_concurrent_streams,
            stream_buffer_len=stream_buffer_len,
            sse_send_buffer_len=sse_send_buffer_len,
            sse_keepalive_interval=sse_keepalive_interval,
            forwarded_allow_ips=forwarded_allow_ips,
            io_threads=io_threads,
        )
        self._log_handler = log_handler
        self._loops: list[EventLoop] = []
        self._pool: WorkerPool[Task] | None = None
        self._io_threads: list[threading.Thread] = []
        self._failure: BaseException | None = None  # what ended an IO loop, if one failed
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._close_lock = threading.Lock()
        self._closing_started = False
        self._port = 0
        self._metrics: Metrics | None = None
        self._count_for_supervisor = False  # a --processes child: counts, no listener
        self._exporter: Any = None  # the metrics HTTP server
        self._started_at = 0.0

    def __getattr__(self, name: str) -> object:
        # The options, as attributes (read-only: the config is frozen).
        config = self.__dict__.get("config")
        if config is not None and name in ServerConfig.__dataclass_fields__:
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def closing(self) -> bool:
        """True once `close()` has begun (or a signal asked for it): for a readiness
        check that tells a load balancer to stop sending before the listener goes."""
        return self._closing_started

    @property
    def port(self) -> int:
        """The bound port (useful after `start(0)`); 0 before the server listens."""
        return self._port

    def start(
        self,
        port: int = 0,
        address: str = "localhost",
        *,
        uds: str | None = None,
        fd: int | None = None,
        reuse_port: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        metrics_port: int | None = None,
        metrics_address: str = "127.0.0.1",
    ) -> None:
        """Listen and serve in the background; returns once listening.

        `address="::"` listens dual-stack (IPv6 and IPv4); `uds=PATH` on a Unix
        socket; `fd=N` on an inherited listening socket (systemd socket
        activation); `reuse_port=True` lets several processes share the port.
        `ssl_context` (or `certfile`/`keyfile`) serves HTTPS; ALPN is set on it.
        `metrics_port`: Prometheus metrics on http://metrics_address:metrics_port/metrics
        (mummy.metrics; needs the `metrics` extra)."""
        if self._loops:
            raise MummyError("this server has already been started; make a new Server")
        config = self.config
        ssl_context = self._tls_context(ssl_context, certfile, keyfile)
        listeners, shared = make_listeners(
            config.io_threads, port, address, uds=uds, fd=fd, reuse_port=reuse_port
        )
        name = listeners[0].getsockname()
        self._port = name[1] if isinstance(name, tuple) else 0
        if self._log_handler is not None:
            log.addHandler(self._log_handler)
        # One queue for the workers; each loop counts and bounds its own share of it.
        ring: TaskRing[Task] = TaskRing(config.per_loop(config.max_pending_requests))
        rings = [ring] + [ring.sibling(ring.capacity) for _ in listeners[1:]]
        self._loops = [
            EventLoop(
                sock,
                loop_ring,
                config,
                connection_driver,
                ssl_context,
                index=i,
                shared_listener=shared,
            )
            for i, (sock, loop_ring) in enumerate(zip(listeners, rings, strict=True))
        ]
        if metrics_port is not None or self._count_for_supervisor:
            self._metrics = Metrics()
        ctx = ResponseContext(closing=lambda: self._closing_started, config=config)
        # Positional: a partial with keywords copies its (shared) keyword dict per call.
        make_request = functools.partial(Request, ctx)
        runtime = WorkerRuntime(
            config, self.handler, make_request, self._dispatch_websocket, self._metrics
        )
        self._started_at = time.monotonic()
        low, high = config.pool_bounds()
        self._pool = WorkerPool(
            ring,
            runtime.run,
            per_thread=runtime.counting_runner if self._metrics is not None else None,
            min_workers=low,
            max_workers=high,
            idle_timeout=config.worker_idle_timeout,
        )
        self._pool.start()
        for loop in self._loops:
            name_suffix = f"-{loop.index}" if len(self._loops) > 1 else ""
            thread = threading.Thread(
                target=self._io_main, args=(loop,), name=f"mummy-io{name_suffix}", daemon=True
            )
            self._io_threads.append(thread)
            thread.start()
        if metrics_port is not None:
            from mummy.metrics import start_exporter

            try:
                self._exporter = start_exporter(self, metrics_port, metrics_address)
            except MummyError:
                threading.Thread(target=self.close, daemon=True).start()
                raise
            log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
        self._ready.set()
        if uds is not None:
            where = f"unix:{uds}"
        elif fd is not None:
            where = f"inherited fd {fd} ({name})"
        else:
            host = f"[{address}]" if ":" in address else address
            scheme = "https" if ssl_context is not None else "http"
            where = f"{scheme}://{host}:{self._port}"
        loops = f", {config.io_threads} IO threads" if config.io_threads > 1 else ""
        log.info(
            "mummy listening on %s (%s%s, %s)",
            where,
            config.describe_pool(),
            loops,
            "free-threaded" if not _gil_enabled() else "GIL build",
        )

    def serve(
        self,
        port: int = 8080,
        address: str = "localhost",
        *,
        uds: str | None = None,
        fd: int | None = None,
        reuse_port: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        metrics_port: int | None = None,
        metrics_address: str = "127.0.0.1",
    ) -> None:
        """Listen on address:port (or `uds`/`fd`, with TLS: as for `start`) and
        serve until `close()`; blocks.

        Called from the main thread, SIGINT and SIGTERM close the server
        gracefully; a second SIGINT exits at once.
        """
        if not logging.getLogger().handlers and not log.handlers:
            # A script calling serve() with no logging set up still gets the startup
            # line and the tracebacks of failing handlers, as uvicorn and gunicorn do.
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
        _raise_open_file_limit()
        self.start(
            port,
            address,
            uds=uds,
            fd=fd,
            reuse_port=reuse_port,
            ssl_context=ssl_context,
            certfile=certfile,
            keyfile=keyfile,
            metrics_port=metrics_port,
            metrics_address=metrics_address,
        )
        restore: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                restore[sig] = signal.signal(sig, self._on_signal)
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            for sig, previous in restore.items():
                signal.signal(sig, previous)
        if self._failure is not None:
            raise MummyError(
                f"the server stopped because its IO loop failed ({self._failure!r}); "
                "the traceback is in the log above"
            ) from self._failure

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._closing_started and signum == signal.SIGINT:
            log.warning("second SIGINT: exiting now")
            os._exit(130)
        self._closing_started = True
        log.info("received %s, closing gracefully", signal.Signals(signum).name)
        threading.Thread(target=self.close, name="mummy-close", daemon=True).start()

    def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Block until the server listens; MummyError after `timeout` seconds."""
        if not self._ready.wait(timeout):
            raise MummyError(f"the server was not listening after {timeout} s")

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting; run the requests already received and let running
        handlers finish (up to `timeout` s); answer what no worker has started by
        then in its own protocol (HTTP/1.1 503, HTTP/2 GOAWAY and REFUSED_STREAM,
        WebSocket 1001); then close every connection."""
        with self._close_lock:
            loops, pool = self._loops, self._pool
            if not loops or pool is None or self._stopped.is_set():
                return
            self._closing_started = True
            deadline = time.monotonic() + timeout
            for loop in loops:
                loop.stop_accepting(timeout)
            engines = [engine for loop in loops for engine in loop.websockets.close()]
            if self._failure is None:
                for engine in engines:
                    engine.close(1001, "server shutting down")
            # else the failed loop dropped every connection already: their handlers
            # get ERROR and CLOSE (1006), as for any connection lost without a Close.
            # Event streams are endless by nature: each ends now, cleanly.
            for loop in loops:
                for stream in loop.streams.snapshot():
                    if isinstance(stream, SseEngine):
                        stream.close()
            self._drain(loops, pool.ring, deadline - min(REFUSAL_MARGIN_S, timeout / 2))
            self._refuse_queued(pool.ring)
            for loop in loops:
                loop.refusals_done()
            self._end_websockets(loops, deadline)
            stop_by = self._end_streams(loops, deadline)
            if not pool.stop(stop_by):
                log.warning("handlers still running after %.1f s; closing anyway", timeout)
            for loop in loops:
                loop.finish(deadline)
            for thread in self._io_threads:
                thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
            if self._exporter is not None:
                self._exporter.shutdown()
                self._exporter.server_close()
            if self._log_handler is not None:
                log.removeHandler(self._log_handler)
            self._stopped.set()

    @staticmethod
    def _drain(loops: list[EventLoop], ring: TaskRing[Task], until: float) -> None:
        """Until `until` (monotonic): let the workers take the requests already
        received (queued in the ring, or one last request on each idle HTTP/1.1
        connection), so that a rolling restart answers them instead of refusing."""
        while time.monotonic() < until:
            # `last_requests_due` first: a connection's request is queued before
            # its count drops, so reading the queue second cannot miss it.
            if not any(loop.last_requests_due for loop in loops) and not ring.queued:
                return
            time.sleep(DRAIN_POLL_S)

    @staticmethod
    def _end_websockets(loops: list[EventLoop], deadline: float) -> None:
        """Wait (up to 1 s) for the peers to answer the 1001; drop the others, so
        that their handlers still get CLOSE while the workers run."""
        answer_by = min(deadline, time.monotonic() + 1.0)
        if all(loop.websockets.wait_empty(answer_by) for loop in loops):
            return
        for loop in loops:
            for engine in loop.websockets.remaining():
                engine.abort()
        for loop in loops:
            loop.websockets.wait_empty(deadline)

    @staticmethod
    def _end_streams(loops: list[EventLoop], deadline: float) -> float:
        """Streamed responses finish like running handlers, until `deadline`; those
        still open then are cancelled (their iterators closed on workers, which get
        up to STREAM_CLOSE_GRACE_S more). Returns when the workers must stop by."""
        if all(loop.streams.wait_empty(deadline, ResponseStream) for loop in loops):
            return deadline
        for loop in loops:
            for stream in loop.streams.snapshot():
                if isinstance(stream, ResponseStream):
                    stream.cancel()
                    stream.conn.post(StreamCancel(stream.conn, stream))
        stop_by = time.monotonic() + STREAM_CLOSE_GRACE_S
        for loop in loops:
            loop.streams.wait_empty(stop_by, ResponseStream)
        return stop_by

    @staticmethod
    def _refuse_queued(ring: TaskRing[Task]) -> None:
        """The tasks no worker has started, answered in their own protocol: an
        HTTP/1.1 request 503 (and close), an HTTP/2 stream REFUSED_STREAM (after
        the GOAWAY), a TLS handshake step a closed connection; WebSocket input is
        dropped, and a worker gives the handler its CLOSE and drops the
        connection after the 1001 Close already on its way."""
        for task in ring.take_queued():
            conn = task.conn
            if isinstance(task, TlsTask):
                conn.post(TlsStep(conn, b"", None))
            elif isinstance(task, WebSocketTask):
                if task.event is WebSocketEvent.INPUT:
                    task = WebSocketTask(conn, task.engine, WebSocketEvent.END)
                ring.requeue(task)
            elif isinstance(task, H2Task):
                ring.requeue(task)  # parsed; the streams it completes are refused
            elif isinstance(task, StreamTask):
                ring.requeue(task)  # a streamed response goes on until close()'s deadline
            elif task.request.stream_id:
                conn.post(H2Refuse(conn, task.request.stream_id))
            else:
                wire = error_response(503, "the server is shutting down")
                conn.post(Http1Response(conn, wire, keep_alive=False))

    def _tls_context(
        self, context: ssl.SSLContext | None, certfile: str | None, keyfile: str | None
    ) -> ssl.SSLContext | None:
        alpn = ["h2", "http/1.1"] if self.http2 else ["http/1.1"]
        if certfile is not None:
            if context is not None:
                raise MummyError("pass either ssl_context or certfile/keyfile, not both")
            try:
                return server_context(certfile, keyfile, alpn)
            except (OSError, ssl.SSLError) as exc:
                raise MummyError(f"cannot load the certificate {certfile!r}: {exc}") from None
        if context is not None:
            context.set_alpn_protocols(alpn)
        return context

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------

    def _io_main(self, loop: EventLoop) -> None:
        name_os_thread(threading.current_thread().name)
        try:
            loop.run()
        except BaseException as exc:
            # Only the loop's own machinery gets here (epoll, the listener, the
            # mailbox): a connection's failure closes that connection only. A bug,
            # not a client's doing: the whole server stops, every loop.
            self._failure = exc
            log.exception("IO loop %d failed; the server is stopping", loop.index)
            threading.Thread(target=self.close, name="mummy-close", daemon=True).start()

    def _dispatch_websocket(
        self, engine: WebSocketEngine, event: Event, message: Message | None
    ) -> None:
        handler = self.websocket_handler
        if handler is None:
            log.debug("WebSocket %s event but no websocket_handler", event.name)
            return
        ws = engine.handle
        assert isinstance(ws, WebSocket)
        handler(ws, event, message)


def _raise_open_file_limit() -> None:
    """Each connection is a file descriptor: raise the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    log.info("open-file limit: %d", soft)


def _h2_installed() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())
