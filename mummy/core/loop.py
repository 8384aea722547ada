"""The IO thread: one epoll loop that accepts, reads, parses, dispatches and writes.

It never runs user code and never blocks anywhere but in `epoll.poll`. Each
turn: wait for events; take back responses from the mailbox (and send them at
once when the socket has room); accept, read and write for ready sockets;
parse what arrived and put complete requests in the ring; expire lingering
closes. Write interest (EPOLLOUT) is registered only while output is pending.

A connection has at most one request with a worker at a time, so pipelined
requests are answered in order; the next one is parsed when the previous
response has been handed back.
"""

import errno
import logging
import socket
import ssl
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from mummy.core.connection import Connection
from mummy.core.http1 import ParsedRequest, ProtocolError, RequestParser
from mummy.core.poller import ERROR, READ, WRITE, make_poller
from mummy.core.response import error_response
from mummy.core.ring import Mailbox, TaskRing
from mummy.core.timers import TimerWheel
from mummy.core.tls import TLSState

if TYPE_CHECKING:
    from mummy.core.h2session import H2Session

log = logging.getLogger("mummy")

RECV_SIZE = 65536
# RFC 9112 §9.6: after an error or a closing response, shut the write side and
# read (and discard) for a while, so the client sees the response, not a reset.
LINGER_SECONDS = 2.0
# Stop parsing a connection's pipelined requests while this much output is unsent.
MAX_PENDING_OUTPUT = 256 * 1024
ACCEPT_PAUSE_SECONDS = 0.1
TIMER_CHECK_SECONDS = 0.25

# What a connection's timer waits for (Connection.timer_kind).
T_HEAD = 1  # a complete request head (header_timeout; slowloris)
T_BODY = 2  # the next body bytes (body_timeout)
T_IDLE = 3  # the next request on a kept-alive connection (keep_alive_timeout)
T_LINGER = 4  # the end of a graceful close (LINGER_SECONDS)
T_WS_CLOSE = 5  # the peer's Close frame after ours (websocket_close_timeout)
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"
SWITCH_TO_H2C = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

EPOLLIN = READ
EPOLLOUT = WRITE
EPOLLERR = ERROR

# What workers (and any thread sending on a WebSocket) post to the IO thread:
# (kind, connection, bytes, extra), or None, a nudge to look at the control flags.
RESPONSE = 0  # an HTTP response; extra: keep the connection open (bool). Ends a task.
UPGRADE = 1  # a 101 response; extra: the WebSocket. Ends a task.
WS_SEND = 2  # a WebSocket frame to write; extra: the WebSocket
WS_CLOSING = 3  # our Close frame: write it, then wait for the peer's up to the close timeout
WS_DROP = 4  # close the TCP connection once pending output is written
WS_DONE = 5  # a WebSocket event task finished. Ends a task.
TLS_STEP = 6  # a handshake step: bytes to send; extra: finished (bool), None if it failed
H2_RESPONSE = 7  # an HTTP/2 response: the body; extra: (stream id, status, fields). Ends a task.
H2_REFUSE = 8  # shutdown: an HTTP/2 stream no worker started; extra: its stream id. Ends a task.
WS_ABORT = 9  # shutdown: the peer did not finish the Close handshake in time; close at once

Posted = tuple[int, Connection, bytes, Any] | None

# WebSocket tasks, in the ring beside requests: (kind, received bytes).
WS_OPEN = 0
WS_INPUT = 1
WS_GONE = 2
TLS_HANDSHAKE = 3
WS_END = 4  # shutdown: queued input dropped; CLOSE for the handler, then drop the connection
Task = tuple[Connection, ParsedRequest | tuple[int, bytes]]


class EventLoop:
    """Owns the listening socket and every connection; `run` is the IO thread's body."""

    def __init__(
        self,
        listener: socket.socket,
        ring: TaskRing[Task],
        *,
        max_headers_len: int,
        max_body_len: int,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keep_alive_timeout: float = 30.0,
        max_connections: int = 50_000,
        websocket_close_timeout: float = 5.0,
        websocket_ping_interval: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        http2: bool = False,
        h2_max_concurrent_streams: int = 100,
    ) -> None:
        self._listener = listener
        self._ring = ring
        self._max_headers_len = max_headers_len
        self._max_body_len = max_body_len
        # While a request is with a worker, keep reading up to one more request.
        self._max_buffered = max_headers_len + max_body_len
        self.mailbox: Mailbox[Posted] = Mailbox()
        self._ws_close_timeout = websocket_close_timeout
        self._ws_ping_interval = websocket_ping_interval
        self._ws_conns: set[Connection] = set()
        self._next_ping = 0.0
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._keep_alive_timeout = keep_alive_timeout
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        # True only when the h2 package is installed (the server checks).
        self._http2 = http2
        self._h2_max_streams = h2_max_concurrent_streams
        self._wheel: TimerWheel[Connection] = TimerWheel()
        self._next_timer_check = 0.0
        self._accepting = True  # the listener is registered with epoll
        self._ep = make_poller()
        self._conns: dict[int, Connection] = {}
        self._stalled: deque[Connection] = deque()
        self._accept_paused_until = 0.0
        # Control flags, set by other threads, then a None is posted to wake the loop.
        self._stop_accepting = False
        self._goaway_due = False
        self._finish_deadline = 0.0
        self.accepting_stopped = threading.Event()
        self.closing = False

    # --- called from other threads ---------------------------------------------

    def stop_accepting(self, timeout: float) -> None:
        """Stop accepting and dispatching; wait until the IO thread has done so."""
        self._stop_accepting = True
        self.mailbox.post(None)
        self.accepting_stopped.wait(timeout)

    def send_goaways(self) -> None:
        """Close every HTTP/2 connection gracefully (GOAWAY, then REFUSED_STREAM for
        the streams no worker started). Call after posting the H2_REFUSE items of
        the tasks taken back from the ring: the mailbox keeps one thread's posts in
        order, so the GOAWAY's last stream id leaves those streams out."""
        self._goaway_due = True
        self.mailbox.post(None)

    def finish(self, deadline: float) -> None:
        """Flush pending output until `deadline` (monotonic), then close everything."""
        self._finish_deadline = deadline
        self.mailbox.post(None)

    # --- the IO thread ---------------------------------------------------------

    def run(self) -> None:
        ep = self._ep
        listen_fd = self._listener.fileno()
        wake_fd = self.mailbox.fd
        ep.register(listen_fd, EPOLLIN)
        ep.register(wake_fd, EPOLLIN)
        conns = self._conns
        try:
            while True:
                for fd, mask in ep.poll(TIMER_CHECK_SECONDS):
                    if fd == wake_fd:
                        self._take_responses()
                    elif fd == listen_fd:
                        self._accept()
                    else:
                        conn = conns.get(fd)
                        if conn is None:
                            continue
                        if mask & EPOLLERR:
                            self._close(conn)
                            continue
                        if mask & EPOLLOUT:
                            self._flush(conn)
                        if mask & ~EPOLLOUT and not conn.closed:
                            self._read(conn)
                now = time.monotonic()
                if now >= self._next_timer_check:
                    self._next_timer_check = now + TIMER_CHECK_SECONDS
                    if self._timers(now):
                        return
        finally:
            self._shutdown()

    def _timers(self, now: float) -> bool:
        """Fire expired connection timers, send keepalive pings, resume paused
        accepts; True when the loop should end."""
        for conn in self._wheel.expired(now):
            self._expire(conn)
        if self._ws_ping_interval and self._ws_conns and now >= self._next_ping:
            self._ping_websockets(now)
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._resume_accepting()
        if self._finish_deadline:
            flushed = not any(c.out for c in self._conns.values())
            return flushed or now >= self._finish_deadline
        return False

    def _expire(self, conn: Connection) -> None:
        kind = conn.timer_kind
        conn.timer_kind = 0
        handshaking = conn.tls is not None and not conn.tls.ready
        if not handshaking and (
            kind == T_BODY or (kind == T_HEAD and (conn.inbuf or not conn.parser.idle))
        ):
            # RFC 9110 §15.5.9: the client was mid-request; tell it why we close.
            self._reject(conn, 408, "request not received in time")
        else:
            # An idle or silent connection, a linger or a Close handshake that ran out.
            self._close(conn)

    def _pause_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._ep.unregister(self._listener.fileno())

    def _resume_accepting(self) -> None:
        if (
            not self._accepting
            and not self.closing
            and not self._accept_paused_until
            and len(self._conns) < self._max_connections
        ):
            self._accepting = True
            self._ep.register(self._listener.fileno(), EPOLLIN)

    def _control(self) -> None:
        if self._stop_accepting and not self.closing:
            self._pause_accepting()
            self.closing = True
            self._listener.close()
            for conn in list(self._conns.values()):
                if conn.ws is not None or conn.h2 is not None:
                    # Server.close() sends WebSockets a 1001 Close, and HTTP/2
                    # connections their GOAWAY once it knows which streams it refused.
                    continue
                if conn.stalled:
                    self._reject(conn, 503, "the server is shutting down")
                elif not conn.busy and not conn.out:
                    self._close(conn)
            self._stalled.clear()
            self.accepting_stopped.set()
        if self._goaway_due:
            self._goaway_due = False
            for conn in list(self._conns.values()):
                if conn.h2 is not None:
                    conn.h2.close()  # streams in flight are still answered
                    self._h2_output(conn)

    def _shutdown(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
        if not self.closing:
            self._listener.close()
        self._ep.close()
        self.mailbox.close()
        self.accepting_stopped.set()

    def _accept(self) -> None:
        while True:
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                # EMFILE/ENFILE/ENOBUFS: pause accepting briefly instead of spinning.
                log.warning(
                    "accept failed (%s); pausing accepts for %.1fs", exc, ACCEPT_PAUSE_SECONDS
                )
                self._ep.unregister(self._listener.fileno())
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
                return
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(
                sock,
                str(addr[0]) if isinstance(addr, tuple) else "",
                RequestParser(self._max_headers_len, self._max_body_len),
            )
            if self._ssl_context is not None:
                conn.tls = TLSState(self._ssl_context)
            self._conns[conn.fd] = conn
            conn.events = EPOLLIN
            self._ep.register(conn.fd, EPOLLIN)
            self._wheel.arm(conn, time.monotonic() + self._header_timeout, T_HEAD)
            if len(self._conns) >= self._max_connections:
                # Leave further clients in the kernel's backlog until some leave.
                log.warning("max_connections (%d) reached; not accepting", self._max_connections)
                self._pause_accepting()
                return

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._read_eof(conn)
            return
        if conn.lingering:
            return  # discarded, see LINGER_SECONDS
        tls = conn.tls
        if tls is not None:
            if not tls.ready:
                conn.inbuf += data
                if not conn.busy:
                    self._tls_task(conn)
                return
            try:
                data = tls.decrypt(data)
            except ssl.SSLError:
                self._close(conn)
                return
            if not data:
                if tls.closed_by_peer:
                    self._read_eof(conn)
                return
        conn.inbuf += data
        if conn.h2 is not None:
            self._h2_input(conn)
            return
        if conn.ws is not None:
            if not conn.busy:
                self._ws_task(conn, WS_INPUT)
            elif len(conn.inbuf) > self._max_buffered:
                self._update_events(conn)
            return
        if conn.busy or conn.stalled:
            if len(conn.inbuf) > self._max_buffered:
                self._update_events(conn)
        else:
            self._advance(conn)

    def _read_eof(self, conn: Connection) -> None:
        if conn.eof or conn.lingering or conn.ws is not None or not (conn.busy or conn.out):
            self._close(conn)
        else:
            conn.eof = True  # half-closed: answer what is with a worker, then close
            conn.close_after_send = True
            self._update_events(conn)

    def _tls_task(self, conn: Connection) -> None:
        """Hand the received handshake bytes to a worker (one step at a time)."""
        data = bytes(conn.inbuf)
        conn.inbuf.clear()
        conn.busy = True
        self._ring.put((conn, (TLS_HANDSHAKE, data)), force=True)
        self._update_events(conn)

    def _on_tls_step(self, conn: Connection, data: bytes, finished: bool | None) -> None:
        conn.busy = False
        tls = conn.tls
        assert tls is not None
        if finished is None:
            self._close(conn)  # the handshake failed (logged by the worker)
            return
        if data:
            self._send_raw(conn, data)
            if conn.closed:
                return
        if not finished:
            if conn.inbuf:
                self._tls_task(conn)
            else:
                self._update_events(conn)
            return
        tls.ready = True
        # Records that arrived during this last step are still ciphertext.
        pending = bytes(conn.inbuf)
        conn.inbuf.clear()
        try:
            conn.inbuf += tls.decrypt(pending)
        except ssl.SSLError:
            self._close(conn)
            return
        if self._http2 and tls.alpn_protocol == "h2":
            self._start_h2(conn)
        else:
            self._advance(conn)

    def _advance(self, conn: Connection) -> None:
        """Parse and dispatch the next request of an idle connection, if complete."""
        if conn.close_after_send or conn.lingering or conn.out_len > MAX_PENDING_OUTPUT:
            self._update_events(conn)
            return
        if self.closing:
            if not conn.out:
                self._close(conn)
            return
        if self._ring.full:
            if not conn.stalled:
                conn.stalled = True
                self._stalled.append(conn)
                self._wheel.disarm(conn)  # waiting for us, not for the client
            self._update_events(conn)
            return
        if self._http2 and conn.parser.idle and conn.inbuf[:1] == b"P":
            # RFC 9113 §3.3: HTTP/2 with prior knowledge starts with the preface.
            if conn.inbuf.startswith(H2_PREFACE):
                self._start_h2(conn)
                return
            if H2_PREFACE.startswith(conn.inbuf):
                self._arm_read_timer(conn)
                return
        try:
            request = conn.parser.next_request(conn.inbuf)
        except ProtocolError as exc:
            self._reject(conn, exc.status, exc.reason)
            return
        if request is not None and self._http2 and _asks_for_h2c(request):
            self._upgrade_to_h2c(conn, request)
            return
        if request is None:
            if conn.parser.continue_due:
                # RFC 9110 §10.1.1: the client waits for this before sending the body.
                conn.parser.continue_due = False
                self._send(conn, CONTINUE_100)
            self._arm_read_timer(conn)
            self._update_events(conn)
            return
        conn.busy = True
        self._wheel.disarm(conn)
        request.received_at = time.monotonic()
        self._ring.put((conn, request))
        self._update_events(conn)

    def _arm_read_timer(self, conn: Connection) -> None:
        """Arm the timer for what `conn` is waiting to receive."""
        now = time.monotonic()
        if not conn.parser.idle:
            # Between body bytes; every arrival pushes the deadline back.
            self._wheel.arm(conn, now + self._body_timeout, T_BODY)
        elif conn.inbuf:
            if conn.timer_kind != T_HEAD:  # the head's deadline is not pushed back
                self._wheel.arm(conn, now + self._header_timeout, T_HEAD)
        elif conn.timer_kind not in (T_HEAD, T_IDLE):
            self._wheel.arm(conn, now + self._keep_alive_timeout, T_IDLE)

    def _take_responses(self) -> None:
        # HTTP/2 connections with new frames: written once per drain, not per stream.
        h2_ready: set[Connection] = set()
        for item in self.mailbox.drain():
            if item is None:
                self._control()
                continue
            kind, conn, data, extra = item
            if kind == RESPONSE:
                self._ring.done()
                if not conn.closed:
                    self._on_response(conn, data, extra)
            elif kind == WS_SEND:
                extra.taken(len(data))
                if not conn.closed:
                    self._send(conn, data)
                    extra.socket_backlog = conn.out_len
            elif kind == WS_DONE:
                self._ring.done()
                conn.busy = False
                if conn.closed:
                    if conn.ws_gone_pending:
                        self._ws_task(conn, WS_GONE)
                elif conn.inbuf:
                    self._ws_task(conn, WS_INPUT)
                else:
                    self._update_events(conn)
            elif kind == UPGRADE:
                self._ring.done()
                if not conn.closed:
                    self._on_upgrade(conn, data, extra)
            elif kind == WS_CLOSING:
                if not conn.closed:
                    self._send(conn, data)
                    self._wheel.arm(conn, time.monotonic() + self._ws_close_timeout, T_WS_CLOSE)
            elif kind == H2_RESPONSE:
                self._ring.done()
                if not conn.closed and conn.h2 is not None:
                    stream_id, status, fields = extra
                    conn.h2.respond(stream_id, status, fields, data)
                    h2_ready.add(conn)
            elif kind == H2_REFUSE:
                self._ring.done()
                if not conn.closed and conn.h2 is not None:
                    conn.h2.refuse(extra)
                    h2_ready.add(conn)
            elif kind == TLS_STEP:
                self._ring.done()
                if not conn.closed:
                    self._on_tls_step(conn, data, extra)
                else:
                    conn.busy = False
            elif kind == WS_ABORT:
                self._close(conn)  # a worker still gives the handler its CLOSE
            elif kind == WS_DROP and not conn.closed:
                conn.close_after_send = True
                if not conn.out:
                    self._close(conn)
        for conn in h2_ready:
            if not conn.closed:
                self._h2_output(conn)
        stalled = self._stalled
        while stalled and not self._ring.full:
            conn = stalled.popleft()
            conn.stalled = False
            if not conn.closed and not conn.busy:
                self._advance(conn)

    def _on_response(self, conn: Connection, wire: bytes, keep_alive: bool) -> None:
        conn.busy = False
        if not keep_alive:
            conn.close_after_send = True
        self._send(conn, wire)
        if conn.closed:
            return
        if conn.close_after_send:
            if not conn.out:
                self._begin_close(conn)
        else:
            self._advance(conn)

    # --- HTTP/2 -------------------------------------------------------------------

    def _new_h2_session(self) -> "H2Session":
        from mummy.core.h2session import H2Session

        return H2Session(
            max_headers_len=self._max_headers_len,
            max_body_len=self._max_body_len,
            max_streams=self._h2_max_streams,
        )

    def _start_h2(self, conn: Connection) -> None:
        session = self._new_h2_session()
        session.start()
        conn.h2 = session
        self._h2_input(conn)

    def _upgrade_to_h2c(self, conn: Connection, request: ParsedRequest) -> None:
        settings = next(v for k, v in request.head.headers if k.lower() == "http2-settings")
        session = self._new_h2_session()
        try:
            session.start_upgrade(settings)
        except Exception:
            self._reject(conn, 400, "invalid HTTP2-Settings")
            return
        self._send(conn, SWITCH_TO_H2C)
        conn.h2 = session
        self._h2_dispatch(conn, session.upgrade_request(request.head, request.body))
        self._h2_input(conn)

    def _h2_dispatch(self, conn: Connection, request: ParsedRequest) -> None:
        if self.closing:
            # RFC 9113 §8.7: a stream refused before any processing may be retried.
            assert conn.h2 is not None
            conn.h2.refuse(request.stream_id)
            return
        request.received_at = time.monotonic()
        # Bounded by SETTINGS_MAX_CONCURRENT_STREAMS per connection.
        self._ring.put((conn, request), force=True)

    def _h2_input(self, conn: Connection) -> None:
        session = conn.h2
        assert session is not None
        data = bytes(conn.inbuf)
        conn.inbuf.clear()
        for request in session.receive(data):
            self._h2_dispatch(conn, request)
        self._h2_output(conn)

    def _h2_output(self, conn: Connection) -> None:
        session = conn.h2
        assert session is not None
        out = session.data_to_send()
        if out:
            self._send(conn, out)
        if conn.closed:
            return
        if session.closed or (session.draining and not session.active_streams):
            conn.close_after_send = True
            if not conn.out:
                self._begin_close(conn)
            return
        if session.active_streams:
            self._wheel.disarm(conn)
        elif conn.timer_kind != T_IDLE:
            self._wheel.arm(conn, time.monotonic() + self._keep_alive_timeout, T_IDLE)
        self._update_events(conn)

    def _on_upgrade(self, conn: Connection, wire: bytes, ws: object) -> None:
        # Bytes after the upgrade request are the first WebSocket frames; they are
        # fed to the protocol after OPEN has run.
        conn.busy = False
        self._send(conn, wire)
        if conn.closed:
            return
        conn.ws = ws
        self._wheel.disarm(conn)
        self._ws_conns.add(conn)
        self._ws_task(conn, WS_OPEN)

    def _ws_task(self, conn: Connection, kind: int) -> None:
        """Hand the next WebSocket event of `conn` to a worker (one at a time)."""
        data = b""
        if kind == WS_INPUT:
            data = bytes(conn.inbuf)
            conn.inbuf.clear()
        elif kind == WS_GONE:
            conn.ws_gone_pending = False
        conn.busy = True
        self._ring.put((conn, (kind, data)), force=True)
        self._update_events(conn)

    def _ping_websockets(self, now: float) -> None:
        assert self._ws_ping_interval is not None
        self._next_ping = now + self._ws_ping_interval
        for conn in list(self._ws_conns):
            ws: Any = conn.ws
            if ws.awaiting_pong:
                log.debug("WebSocket peer %s stopped answering pings", conn.remote_address)
                self._close(conn)
            else:
                ws.awaiting_pong = True
                # An empty, unmasked Ping frame (RFC 6455 §5.5.2); frames from other
                # threads arrive whole, so it never lands inside one.
                self._send(conn, b"\x89\x00")

    def _send(self, conn: Connection, data: bytes) -> None:
        tls = conn.tls
        if tls is not None:
            data = tls.encrypt(data)
        self._send_raw(conn, data)

    def _send_raw(self, conn: Connection, data: bytes) -> None:
        if not conn.out:
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            if sent == len(data):
                return
            view = memoryview(data)[sent:]
        else:
            view = memoryview(data)
        conn.out.append(view)
        conn.out_len += len(view)
        self._update_events(conn)

    def _flush(self, conn: Connection) -> None:
        out = conn.out
        while out:
            view = out[0]
            try:
                sent = conn.sock.send(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            conn.out_len -= sent
            if sent < len(view):
                out[0] = view[sent:]
                break
            out.popleft()
        if conn.ws is not None:
            conn.ws.socket_backlog = conn.out_len  # type: ignore[attr-defined]
            if not out and conn.close_after_send:
                self._close(conn)
                return
        elif conn.h2 is not None:
            if not out and conn.close_after_send:
                self._begin_close(conn)
                return
        elif not out:
            if conn.close_after_send:
                self._begin_close(conn)
                return
            if not conn.busy:
                self._advance(conn)
                return
        self._update_events(conn)

    def _reject(self, conn: Connection, status: int, reason: str) -> None:
        log.debug("rejecting request from %s: %d %s", conn.remote_address, status, reason)
        conn.close_after_send = True
        conn.inbuf.clear()
        self._send(conn, error_response(status, reason))
        if not conn.closed and not conn.out:
            self._begin_close(conn)

    def _begin_close(self, conn: Connection) -> None:
        if conn.eof:
            self._close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.lingering = True
        conn.inbuf.clear()
        self._wheel.arm(conn, time.monotonic() + LINGER_SECONDS, T_LINGER)
        self._update_events(conn)

    def _update_events(self, conn: Connection) -> None:
        if conn.closed:
            return
        mask = EPOLLOUT if conn.out else 0
        if conn.lingering:
            mask |= EPOLLIN
        elif not conn.eof and not conn.close_after_send:
            if conn.busy or conn.stalled:
                if len(conn.inbuf) <= self._max_buffered:
                    mask |= EPOLLIN
            elif conn.out_len <= MAX_PENDING_OUTPUT:
                mask |= EPOLLIN
        if mask != conn.events:
            conn.events = mask
            self._ep.modify(conn.fd, mask)

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.fd, None)
        self._wheel.remove(conn)
        if conn.ws is not None:
            self._ws_conns.discard(conn)
            # Once finishing, the workers are gone: no more events to run.
            if conn.busy:
                conn.ws_gone_pending = True
            elif not self._finish_deadline:
                self._ws_task(conn, WS_GONE)
        try:
            self._ep.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        conn.sock.close()
        if not self._accepting:
            self._resume_accepting()


def _asks_for_h2c(request: ParsedRequest) -> bool:
    """An HTTP/1.1 request with `Upgrade: h2c` and one HTTP2-Settings (RFC 7540 §3.2),
    and no body (a body would have to be read before switching)."""
    head = request.head
    if head.version != "HTTP/1.1" or request.body:
        return False
    upgrade = settings = 0
    for name, value in head.headers:
        key = name.lower()
        if key == "upgrade" and "h2c" in [t.strip().lower() for t in value.split(",")]:
            upgrade += 1
        elif key == "http2-settings":
            settings += 1
    return upgrade == 1 and settings == 1
