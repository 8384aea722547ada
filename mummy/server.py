"""`Server`: one IO thread, a ring, and a pool of workers running your handler."""

from __future__ import annotations

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

from mummy.core.compression import DecodeError, decode_body
from mummy.core.connection import Connection
from mummy.core.http1 import ParsedRequest
from mummy.core.listener import make_listener
from mummy.core.loop import (
    H2_REFUSE,
    H2_RESPONSE,
    RESPONSE,
    TLS_HANDSHAKE,
    TLS_STEP,
    WS_DONE,
    WS_DROP,
    WS_END,
    WS_GONE,
    WS_INPUT,
    WS_OPEN,
    EventLoop,
    Task,
)
from mummy.core.response import error_response, h2_error_response
from mummy.core.ring import TaskRing
from mummy.core.target import TargetError, parse_query, split_target
from mummy.core.tls import server_context
from mummy.core.workers import WorkerPool
from mummy.errors import MummyError
from mummy.request import Request, ResponseContext
from mummy.websocket import Event, Message, WebSocket

log = logging.getLogger("mummy")

Handler = Callable[[Request], None]

# Chosen from the size/speed table in docs/compression.md (bench/compression_levels.py).
DEFAULT_GZIP_LEVEL = 5
DEFAULT_ZSTD_LEVEL = 3
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MummyError(f"{name} must be a positive int, got {value!r}")
    return value


class Server:
    """An HTTP/1.1 server: all socket IO on one thread, handlers on a pool of workers.

    >>> server = mummy.Server(handler)
    >>> server.serve(8080)  # blocks; Ctrl-C stops it gracefully

    `workers` defaults to 10 x the number of CPUs: handlers may block (sleep,
    query a database) without stalling anyone else.
    """

    def __init__(
        self,
        handler: Handler,
        websocket_handler: Callable[[WebSocket, Event, Message | None], None] | None = None,
        *,
        workers: int | None = None,
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
        http2: bool = True,
        h2_max_concurrent_streams: int = 100,
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
        self.workers = _positive_int(
            "workers", workers if workers is not None else 10 * (os.cpu_count() or 1)
        )
        self.max_headers_len = _positive_int("max_headers_len", max_headers_len)
        self.max_body_len = _positive_int("max_body_len", max_body_len)
        self.max_message_len = _positive_int("max_message_len", max_message_len)
        if not 1 <= gzip_level <= 9:
            raise MummyError(f"gzip_level must be from 1 to 9, got {gzip_level!r}")
        if not 1 <= zstd_level <= 22:
            raise MummyError(f"zstd_level must be from 1 to 22, got {zstd_level!r}")
        if not isinstance(compress_min_size, int) or compress_min_size < 0:
            raise MummyError(f"compress_min_size must be an int >= 0, got {compress_min_size!r}")
        self.compress = bool(compress)
        self.compress_min_size = compress_min_size
        self.gzip_level = gzip_level
        self.zstd_level = zstd_level
        self.access_log = bool(access_log)
        self.websocket_send_buffer_len = _positive_int(
            "websocket_send_buffer_len", websocket_send_buffer_len
        )
        if websocket_ping_interval is not None and not websocket_ping_interval > 0:
            raise MummyError(
                "websocket_ping_interval must be None or > 0 seconds, "
                f"got {websocket_ping_interval!r}"
            )
        if not websocket_close_timeout > 0:
            raise MummyError(
                f"websocket_close_timeout must be > 0 seconds, got {websocket_close_timeout!r}"
            )
        if websocket_compression not in (True, False, "context_takeover"):
            raise MummyError(
                "websocket_compression must be True, False or 'context_takeover', "
                f"got {websocket_compression!r}"
            )
        for name, value in (
            ("header_timeout", header_timeout),
            ("body_timeout", body_timeout),
            ("keep_alive_timeout", keep_alive_timeout),
        ):
            if not isinstance(value, (int, float)) or not value > 0:
                raise MummyError(f"{name} must be a number of seconds > 0, got {value!r}")
        if queue_timeout is not None and not queue_timeout > 0:
            raise MummyError(f"queue_timeout must be None or > 0 seconds, got {queue_timeout!r}")
        self.header_timeout = float(header_timeout)
        self.body_timeout = float(body_timeout)
        self.keep_alive_timeout = float(keep_alive_timeout)
        self.queue_timeout = queue_timeout
        self.max_connections = _positive_int("max_connections", max_connections)
        self.max_pending_requests = _positive_int("max_pending_requests", max_pending_requests)
        self.websocket_ping_interval = websocket_ping_interval
        # HTTP/2 needs the optional h2 package (pip install mummy-server[h2]).
        self.http2 = bool(http2) and _h2_installed()
        self.h2_max_concurrent_streams = _positive_int(
            "h2_max_concurrent_streams", h2_max_concurrent_streams
        )
        self.websocket_close_timeout = websocket_close_timeout
        self.websocket_compression = websocket_compression
        # The WebSockets whose OPEN has run and whose CLOSE has not, for close() to
        # say goodbye to; `_websockets_closed` (set by close()) refuses new ones.
        # Both guarded by `_websockets_lock`.
        self._websockets: set[WebSocket] = set()
        self._websockets_closed = False
        self._websockets_lock = threading.Lock()
        self._log_handler = log_handler
        self._ctx: ResponseContext | None = None
        self._loop: EventLoop | None = None
        self._pool: WorkerPool[Task] | None = None
        self._io_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._close_lock = threading.Lock()
        self._closing_started = False
        self._port = 0

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
    ) -> None:
        """Listen and serve in the background; returns once listening.

        `address="::"` listens dual-stack (IPv6 and IPv4); `uds=PATH` on a Unix
        socket; `fd=N` on an inherited listening socket (systemd socket
        activation); `reuse_port=True` lets several processes share the port.
        `ssl_context` (or `certfile`/`keyfile`) serves HTTPS; ALPN is set on it."""
        if self._loop is not None:
            raise MummyError("this server has already been started; make a new Server")
        ssl_context = self._tls_context(ssl_context, certfile, keyfile)
        listener = make_listener(port, address, uds=uds, fd=fd, reuse_port=reuse_port)
        name = listener.getsockname()
        self._port = name[1] if isinstance(name, tuple) else 0
        if self._log_handler is not None:
            log.addHandler(self._log_handler)
        ring: TaskRing[Task] = TaskRing(self.max_pending_requests)
        self._loop = EventLoop(
            listener,
            ring,
            max_headers_len=self.max_headers_len,
            max_body_len=self.max_body_len,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            keep_alive_timeout=self.keep_alive_timeout,
            max_connections=self.max_connections,
            websocket_close_timeout=self.websocket_close_timeout,
            websocket_ping_interval=self.websocket_ping_interval,
            ssl_context=ssl_context,
            http2=self.http2,
            h2_max_concurrent_streams=self.h2_max_concurrent_streams,
        )
        self._ctx = ResponseContext(
            post=self._loop.mailbox.post,
            closing=self._closing,
            compress=self.compress,
            compress_min_size=self.compress_min_size,
            gzip_level=self.gzip_level,
            zstd_level=self.zstd_level,
            access_log=self.access_log,
            websocket_send_buffer_len=self.websocket_send_buffer_len,
            max_message_len=self.max_message_len,
            websocket_compression=self.websocket_compression,
        )
        self._pool = WorkerPool(self.workers, ring, self._run_task)
        self._pool.start()
        self._io_thread = threading.Thread(target=self._io_main, name="mummy-io", daemon=True)
        self._io_thread.start()
        self._ready.set()
        if uds is not None:
            where = f"unix:{uds}"
        elif fd is not None:
            where = f"inherited fd {fd} ({name})"
        else:
            host = f"[{address}]" if ":" in address else address
            scheme = "https" if ssl_context is not None else "http"
            where = f"{scheme}://{host}:{self._port}"
        log.info(
            "mummy listening on %s (%d workers, %s)",
            where,
            self.workers,
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
        """Stop accepting; let running handlers finish (up to `timeout` s); answer
        what no worker has started in its own protocol (HTTP/1.1 503, HTTP/2
        GOAWAY and REFUSED_STREAM, WebSocket 1001); then close every connection."""
        with self._close_lock:
            loop, pool, io_thread = self._loop, self._pool, self._io_thread
            if loop is None or pool is None or io_thread is None or self._stopped.is_set():
                return
            deadline = time.monotonic() + timeout
            loop.stop_accepting(timeout)
            self._say_goodbye_to_websockets()
            self._refuse_queued(loop, pool.ring)
            loop.send_goaways()
            if not self._wait_for_websockets(min(deadline, time.monotonic() + 1.0)):
                # Peers that did not answer the 1001 in time: drop them, so that
                # their handlers still get CLOSE while the workers run.
                with self._websockets_lock:
                    late = list(self._websockets)
                for ws in late:
                    ws.abort()
                self._wait_for_websockets(deadline)
            if not pool.stop(deadline):
                log.warning("handlers still running after %.1f s; closing anyway", timeout)
            loop.finish(deadline)
            io_thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
            if self._log_handler is not None:
                log.removeHandler(self._log_handler)
            self._stopped.set()

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

    def _say_goodbye_to_websockets(self) -> None:
        """Close every open WebSocket with 1001 (going away); refuse new ones."""
        with self._websockets_lock:
            self._websockets_closed = True
            websockets = list(self._websockets)
        for ws in websockets:
            ws.close(1001, "server shutting down")

    def _wait_for_websockets(self, until: float) -> bool:
        """Wait until `until` (monotonic) for every WebSocket's CLOSE to have run;
        True if all did."""
        while True:
            with self._websockets_lock:
                if not self._websockets:
                    return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.02)

    def _refuse_queued(self, loop: EventLoop, ring: TaskRing[Task]) -> None:
        """The tasks no worker has started, answered in their own protocol: an
        HTTP/1.1 request 503 (and close), an HTTP/2 stream REFUSED_STREAM (after
        the GOAWAY), a TLS handshake step a closed connection; WebSocket input is
        dropped, and the worker gives the handler its CLOSE and drops the
        connection after the 1001 Close already on its way."""
        post = loop.mailbox.post
        for conn, parsed in ring.take_queued():
            if isinstance(parsed, tuple):
                kind = parsed[0]
                if kind == TLS_HANDSHAKE:
                    post((TLS_STEP, conn, b"", None))
                else:
                    ring.requeue((conn, (WS_END if kind == WS_INPUT else kind, b"")))
            elif parsed.stream_id:
                post((H2_REFUSE, conn, b"", parsed.stream_id))
            else:
                post((RESPONSE, conn, error_response(503, "the server is shutting down"), False))

    def _open_websocket(self, ws: WebSocket) -> bool:
        """Worker, before OPEN: register `ws`, unless close() has begun."""
        with self._websockets_lock:
            if self._websockets_closed:
                return False
            self._websockets.add(ws)
            return True

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------

    def _io_main(self) -> None:
        assert self._loop is not None
        try:
            self._loop.run()
        except Exception:
            log.exception("the IO loop failed; the server is stopping")
        finally:
            if not self._close_lock.locked():
                threading.Thread(target=self.close, daemon=True).start()

    def _closing(self) -> bool:
        return self._loop is not None and self._loop.closing

    def _run_task(self, task: Task) -> None:
        """A worker runs this for each task. Every request task ends with exactly
        one response posted, whatever fails, so no connection is left hanging."""
        conn, parsed = task
        if isinstance(parsed, tuple):
            if parsed[0] == TLS_HANDSHAKE:
                self._run_tls_handshake(conn, parsed[1])
            else:
                self._run_websocket_task(conn, parsed[0], parsed[1])
            return
        request = None
        try:
            request = self._make_request(conn, parsed)
            if request is not None:
                self._call_handler(request)
        except BaseException:
            log.exception("failed to serve %s %s", parsed.head.method, parsed.head.target)
            if request is None or not request.responded:
                self._answer_error(conn, parsed, 500, "the server failed to handle the request")

    def _answer_error(self, conn: Connection, parsed: ParsedRequest, status: int, why: str) -> None:
        """Answer a request the handler never saw, in its protocol: HTTP/1.1 closes
        the connection after it, HTTP/2 answers on the stream and keeps the rest."""
        assert self._ctx is not None
        if parsed.stream_id:
            fields, body = h2_error_response(status, why)
            self._ctx.post((H2_RESPONSE, conn, body, (parsed.stream_id, status, fields)))
        else:
            self._ctx.post((RESPONSE, conn, error_response(status, why), False))

    def _run_tls_handshake(self, conn: Connection, data: bytes) -> None:
        assert self._ctx is not None and conn.tls is not None
        try:
            out, finished = conn.tls.handshake(data)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", conn.remote_address, exc)
            self._ctx.post((TLS_STEP, conn, b"", None))
            return
        self._ctx.post((TLS_STEP, conn, out, finished))

    def _make_request(self, conn: Connection, parsed: ParsedRequest) -> Request | None:
        """The Request for a parsed request, or None when it was answered already
        (shed by queue_timeout, a bad target, a body that does not decode)."""
        ctx = self._ctx
        assert ctx is not None
        head = parsed.head
        body = parsed.body
        queue_timeout = self.queue_timeout
        if queue_timeout is not None and time.monotonic() - parsed.received_at > queue_timeout:
            # Load shedding: answering late is worse than answering "later".
            self._answer_error(conn, parsed, 503, "the request waited too long for a worker")
            return None
        try:
            path, raw_query = split_target(head.target)
            query = parse_query(raw_query) if raw_query else []
            if head.content_encoding is not None and body:
                body = decode_body(body, head.content_encoding, self.max_body_len)
        except TargetError as exc:
            self._answer_error(conn, parsed, 400, str(exc))
            return None
        except DecodeError as exc:
            self._answer_error(conn, parsed, exc.status, str(exc))
            return None
        return Request(head, body, path, query, conn.remote_address, conn, ctx, parsed.stream_id)

    def _call_handler(self, request: Request) -> None:
        try:
            self.handler(request)
        except BaseException:
            # Any exception, even SystemExit: a handler never takes a worker down.
            log.exception("handler raised on %s %s", request.method, request.uri)
        else:
            if request.responded:
                return
            log.error("handler returned without responding to %s %s", request.method, request.uri)
        if not request.responded:
            try:
                request.respond(500, _TEXT, "Internal Server Error\n")
            except MummyError:
                pass  # responded from another thread in the meantime

    def _run_websocket_task(self, conn: Connection, kind: int, data: bytes) -> None:
        """A worker runs this for each WebSocket task; one at a time per connection."""
        ctx = self._ctx
        assert ctx is not None
        ws: WebSocket = conn.ws  # type: ignore[assignment]
        try:
            events: list[tuple[Event, Message | None]]
            if kind == WS_OPEN:
                if self._open_websocket(ws):
                    ws.opened = True
                    events, drop = [(Event.OPEN, None)], False
                else:
                    # Upgraded as close() began: no events at all (no OPEN, so no
                    # CLOSE either), a 1001 Close, then the connection is dropped.
                    ws.close(1001, "server shutting down")
                    events, drop = [], True
            elif kind == WS_INPUT:
                try:
                    events, drop = ws.receive(data, self.max_message_len)
                except Exception:
                    log.exception("WebSocket protocol failure from %s", conn.remote_address)
                    events, drop = [(Event.ERROR, None)], True
            elif kind == WS_END:
                events, drop = [], True
            else:
                events, drop = ws.gone(), True
            if ws.opened:
                for event, message in events:
                    self._dispatch_websocket(ws, event, message)
            ws.fail_pending()
            if drop:
                if ws.opened and ws.claim_close():
                    self._dispatch_websocket(ws, Event.CLOSE, None)
                    with self._websockets_lock:
                        self._websockets.discard(ws)
                if kind != WS_GONE:
                    ctx.post((WS_DROP, conn, b"", ws))
        finally:
            ctx.post((WS_DONE, conn, b"", ws))

    def _dispatch_websocket(self, ws: WebSocket, event: Event, message: Message | None) -> None:
        handler = self.websocket_handler
        if handler is None:
            log.debug("WebSocket %s event but no websocket_handler", event.name)
            return
        try:
            handler(ws, event, message)
        except Exception:
            log.exception("WebSocket handler raised on %s", event.name)


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
