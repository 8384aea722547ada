"""HTTP/1.1 on the IO thread: parsing, pipelining in order, 100-continue, read
timers, error answers, and the switches to HTTP/2 (prior knowledge, h2c) and to
WebSocket (a 101 from a worker).

A connection has at most one request with a worker at a time, so pipelined
requests are answered in order; the next one is parsed when the previous
response has been handed back, or, for a streamed response or an EventStream
(mummy.core.streams, mummy.core.sse), once that stream has ended.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from mummy.core.connection import BODY, HEAD, IDLE, SSE_KEEPALIVE, Timer
from mummy.core.driver import MAX_PENDING_OUTPUT, Driver
from mummy.core.fields import H2_PREFACE, comma_tokens
from mummy.core.files import FileSegment
from mummy.core.h2_driver import H2Driver
from mummy.core.http1 import ParsedRequest, ProtocolError, RequestParser
from mummy.core.messages import (
    FileStart,
    Http1Response,
    HttpTask,
    Message,
    StreamCancel,
    StreamData,
    StreamOutcome,
    StreamStart,
    StreamYield,
    Upgrade,
    WebSocketFrame,
)
from mummy.core.response import error_response
from mummy.core.sse import KEEPALIVE_COMMENT, SseEngine
from mummy.core.streams import ResponseStream
from mummy.core.ws_driver import WebSocketDriver

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.loop import EventLoop

log = logging.getLogger("mummy")

CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"
# Server.close(): how long an idle connection may take to send one last request
# (Http1Driver.server_closing).
LAST_REQUEST_GRACE_S = 0.5
SWITCH_TO_H2C = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


class Http1Driver(Driver):
    __slots__ = (
        "busy",
        "inbuf",
        "last_due",
        "parser",
        "stream",
        "stream_timer",
        "waiting",
    )
    protocol = "http1"

    def __init__(self, loop: EventLoop, conn: Connection, inbuf: bytearray | None = None) -> None:
        super().__init__(loop, conn)
        config = loop.config
        self.parser = RequestParser(config.max_headers_len, config.max_body_len)
        self.inbuf = inbuf if inbuf is not None else bytearray()
        self.busy = False  # a request of this connection is with a worker, or streaming
        self.waiting = False  # a complete request waits for room in the ring
        # The response streaming now (a file: sent by the transport with os.sendfile).
        self.stream: ResponseStream | SseEngine | FileSegment | None = None
        self.stream_timer: Timer | None = None  # an EventStream's keepalive comments
        self.last_due = False  # counted in loop.last_requests_due

    def start(self) -> None:
        """Accepted (wait for a head), or after TLS (parse what came with it)."""
        if not self.conn.timer.timer_kind:
            self.loop.arm(self.conn.timer, self.loop.config.header_timeout, HEAD)
        if self.inbuf:
            self._advance()

    def ring_has_room(self) -> None:
        self.waiting = False
        if not self.busy:
            self._advance()

    def received(self, data: bytes) -> None:
        self.inbuf += data
        if self.busy or self.waiting:
            if len(self.inbuf) > self.loop.config.max_buffered:
                self.loop.update_events(self.conn)
        else:
            self._advance()

    def wants_input(self) -> bool:
        if self.busy or self.waiting:
            return len(self.inbuf) <= self.loop.config.max_buffered
        return self.conn.out_len <= MAX_PENDING_OUTPUT

    def peer_closed(self) -> None:
        if isinstance(self.stream, SseEngine):
            self.loop.close(self.conn)  # the reader of an event stream left
            return
        # Half-closed: answer what is with a worker or queued, then close.
        if self.busy:
            self.loop.update_events(self.conn)  # closed once the response is out
        elif self.conn.out:
            self.loop.close_after_output(self.conn, graceful=True)
        else:
            self.loop.close(self.conn)

    def flushed(self) -> None:
        stream = self.stream
        if stream is None:
            if not self.conn.out and not self.busy:
                self._advance()
        elif isinstance(stream, SseEngine):
            stream.socket_backlog = self.conn.out_len
        elif isinstance(stream, FileSegment):
            if self.conn.file is None:  # sent (a failed send closed the connection)
                self._stream_over(close=not stream.keep_alive)
        else:
            self._resume(stream)

    def closed(self) -> None:
        self._last_taken()
        stream = self.stream
        if self.stream_timer is not None:
            self.loop.wheel.remove(self.stream_timer)
        if isinstance(stream, (SseEngine, ResponseStream)):
            self._gone(stream)

    def timer_fired(self, kind: int) -> None:
        if kind == SSE_KEEPALIVE:
            self._keepalive()
        elif kind == BODY or (kind == HEAD and (self.inbuf or not self.parser.idle)):
            # RFC 9110 §15.5.9: the client was mid-request; tell it why we close.
            self.reject(408, "request not received in time")
        else:
            self.loop.close(self.conn)  # idle or silent: closed quietly

    def message(self, msg: Message) -> None:
        if isinstance(msg, Http1Response):
            # A response: write it, then close or parse the next pipelined request.
            conn = self.conn
            if conn.closed:
                return
            self.busy = False
            self.loop.send(conn, msg.wire)
            if conn.closed:
                return
            if not msg.keep_alive or conn.eof:
                self.loop.close_after_output(conn, graceful=True)
            else:
                self._advance()
        elif isinstance(msg, (StreamStart, StreamData, StreamYield, StreamCancel)):
            self._stream_message(msg)
        elif isinstance(msg, FileStart):
            self._file(msg)
        elif isinstance(msg, Upgrade):
            self._upgraded(msg)
        elif isinstance(msg, WebSocketFrame):
            # Sent right after an upgrade whose connection closed first: the frame
            # is dropped, but its sender counts it until it is taken.
            msg.engine.taken(len(msg.frame))

    def server_closing(self) -> None:
        conn, loop = self.conn, self.loop
        if self.waiting:
            self.reject(503, "the server is shutting down")
        elif self.busy or conn.out:
            pass  # closed after this response (Connection: close)
        elif conn.eof:
            loop.close(conn)
        else:
            # Idle, or a request on its way: one more request is answered (with
            # Connection: close) if it comes within LAST_REQUEST_GRACE_S. Closing at
            # once would cut the request a busy keep-alive client is sending right
            # now, or one from a client accepted a moment ago; after the grace only
            # a client idle that long can meet the close (RFC 9112 §9.3.1 lets it
            # retry an idempotent request).
            self.last_due = True
            loop.last_requests_due += 1
            grace = min(LAST_REQUEST_GRACE_S, loop.config.header_timeout)
            loop.wheel.arm(conn.timer, time.monotonic() + grace, HEAD)
            if self.inbuf:
                self._advance()

    def _last_taken(self) -> None:
        """The last request due at closing was dispatched, or its connection ended."""
        if self.last_due:
            self.last_due = False
            self.loop.last_requests_due -= 1

    def last_word(self) -> bytes:
        if self.busy or self.conn.out:
            return b""  # a response may be half written: nothing can follow it
        return error_response(500, "the server failed to handle the request")

    def reject(self, status: int, reason: str) -> None:
        """Answer `status` and close (gracefully: RFC 9112 §9.6)."""
        log.debug("rejecting request from %s: %d %s", self.conn.remote_address, status, reason)
        self.inbuf.clear()
        self.loop.send(self.conn, error_response(status, reason))
        self.loop.close_after_output(self.conn, graceful=True)

    # --- streamed responses and EventStreams ------------------------------------

    def _stream_message(self, msg: StreamStart | StreamData | StreamYield | StreamCancel) -> None:
        conn, loop = self.conn, self.loop
        if isinstance(msg, StreamData):
            stream = msg.stream
            stream.taken(len(msg.wire))
            if conn.closed or stream is not self.stream:
                return
            if msg.abort:
                loop.close(conn)  # a reader too slow for its EventStream
                return
            loop.send(conn, msg.wire)
            if isinstance(stream, SseEngine):
                stream.socket_backlog = conn.out_len
            if msg.last:
                self._stream_over(close=not stream.keep_alive)
        elif isinstance(msg, StreamYield):
            stream = msg.stream
            stream.task_ended(msg.outcome)
            if conn.closed or stream is not self.stream:
                self._resume(stream)  # cancelled: the iterator is still to be closed
            elif msg.outcome is StreamOutcome.PAUSED:
                self._resume(stream)
            elif msg.outcome is StreamOutcome.ENDED:
                self._stream_over(close=not stream.keep_alive)
            else:
                # RFC 9112 §7.1: without its last chunk the client sees the body is cut.
                self._stream_over(close=True, hard=True)
        elif isinstance(msg, StreamCancel):
            self._resume(msg.stream)
        else:
            stream = msg.stream
            if conn.closed:
                # Closed while its handler ran: closed() did not know of it yet.
                self.busy = False
                self._gone(stream)
                return
            self.stream = stream  # busy until it ends: the next request waits for it
            if msg.wire:
                loop.send(conn, msg.wire)
            if isinstance(stream, SseEngine):
                stream.socket_backlog = conn.out_len
                interval = loop.config.sse_keepalive_interval
                if interval is not None:
                    if self.stream_timer is None:
                        self.stream_timer = Timer(conn)
                    loop.arm(self.stream_timer, interval, SSE_KEEPALIVE)
            else:
                self._resume(stream)

    def _file(self, msg: FileStart) -> None:
        conn, loop = self.conn, self.loop
        if conn.closed:
            self.busy = False
            msg.segment.close()
            return
        self.stream = msg.segment  # busy until it is sent
        loop.send(conn, msg.wire)
        if conn.closed:
            msg.segment.close()
            return
        conn.file = msg.segment
        loop.flush(conn)  # the first part now, the rest as the socket takes it

    def _gone(self, stream: ResponseStream | SseEngine) -> None:
        """The connection is closed: an EventStream is over; a streamed response is
        cancelled, its iterator closed by a task (unless one runs: it sees the flag)."""
        if isinstance(stream, SseEngine):
            stream.stream_gone()
        else:
            stream.cancel()
            self._resume(stream)

    def _resume(self, stream: ResponseStream | SseEngine) -> None:
        """Put the stream's next task, if it is idle and the output has room."""
        if isinstance(stream, ResponseStream) and not self.loop.finishing:
            task = stream.next_task(self.conn.out_len)
            if task is not None:
                self.loop.ring.put(task, force=True)  # one per stream, like WebSocket events

    def _stream_over(self, *, close: bool, hard: bool = False) -> None:
        conn, loop = self.conn, self.loop
        self.stream = None
        self.busy = False
        if self.stream_timer is not None:
            loop.wheel.disarm(self.stream_timer)
        if close or conn.eof:
            loop.close_after_output(conn, graceful=not hard)
        else:
            self._advance()

    def _keepalive(self) -> None:
        stream, interval = self.stream, self.loop.config.sse_keepalive_interval
        if isinstance(stream, SseEngine) and stream.write(KEEPALIVE_COMMENT):
            assert interval is not None and self.stream_timer is not None
            self.loop.arm(self.stream_timer, interval, SSE_KEEPALIVE)

    # --- internals ---------------------------------------------------------------

    def _upgraded(self, msg: Upgrade) -> None:
        conn = self.conn
        self.busy = False
        if conn.closed:
            return
        self.loop.send(conn, msg.wire)
        if conn.closed:
            return
        self.loop.wheel.disarm(conn.timer)
        # Bytes after the upgrade request are the first frames: fed after OPEN.
        self.loop.switch(conn, WebSocketDriver(self.loop, conn, msg.engine, self.inbuf))
        if conn.eof:
            # The peer half-closed while the upgrade was with a worker.
            self.loop.close_after_output(conn, graceful=False)

    def _advance(self) -> None:
        """Parse and dispatch the next request, if complete."""
        conn, loop = self.conn, self.loop
        if conn.close_when_flushed or conn.lingering or conn.out_len > MAX_PENDING_OUTPUT:
            loop.update_events(conn)
            return
        if loop.closing and not self.last_due:
            if not conn.out:
                loop.close(conn)
            return
        inbuf = self.inbuf
        if not inbuf and self.parser.idle:
            # Nothing buffered (the common keep-alive case): wait for the next request.
            timer = conn.timer
            if timer.timer_kind not in (HEAD, IDLE):
                loop.wheel.arm(timer, time.monotonic() + loop.config.keep_alive_timeout, IDLE)
            loop.set_events(conn, conn.out_len <= MAX_PENDING_OUTPUT)  # wants_input()
            return
        if loop.ring.full:
            if not self.waiting:
                self.waiting = True
                loop.waiting_for_ring.append(self)
                loop.wheel.disarm(conn.timer)  # waiting for us, not for the client
            loop.update_events(conn)
            return
        if loop.config.http2 and self.parser.idle and inbuf[:1] == b"P":
            # RFC 9113 §3.3: HTTP/2 with prior knowledge starts with the preface.
            if inbuf.startswith(H2_PREFACE):
                self._switch_to_h2(None)
                return
            if H2_PREFACE.startswith(inbuf):
                self._arm_read_timer()
                return
        try:
            request = self.parser.next_request(inbuf)
        except ProtocolError as exc:
            self.reject(exc.status, exc.reason)
            return
        if request is None:
            if self.parser.continue_due:
                # RFC 9110 §10.1.1: the client waits for this before sending the body.
                self.parser.continue_due = False
                loop.send(conn, CONTINUE_100)
            self._arm_read_timer()
            loop.set_events(conn, conn.out_len <= MAX_PENDING_OUTPUT)  # wants_input()
            return
        if loop.config.http2 and _asks_for_h2c(request):
            self._switch_to_h2(request)
            return
        self.busy = True
        loop.wheel.disarm(conn.timer)
        request.received_at = time.monotonic()
        loop.ring.put(HttpTask(conn, request))
        self._last_taken()  # after the put: Server._drain reads the count, then the ring
        loop.set_events(conn, len(self.inbuf) <= loop.config.max_buffered)  # wants_input()

    def _arm_read_timer(self) -> None:
        """Arm the timer for what the connection is waiting to receive."""
        timer, config, wheel = self.conn.timer, self.loop.config, self.loop.wheel
        kind = timer.timer_kind
        if not self.parser.idle:
            # Between body bytes; every arrival pushes the deadline back.
            wheel.arm(timer, time.monotonic() + config.body_timeout, BODY)
        elif self.inbuf:
            if kind != HEAD:  # the head's deadline is not pushed back
                wheel.arm(timer, time.monotonic() + config.header_timeout, HEAD)
        elif kind not in (HEAD, IDLE):
            wheel.arm(timer, time.monotonic() + config.keep_alive_timeout, IDLE)

    def _switch_to_h2(self, upgrade: ParsedRequest | None) -> None:
        self._last_taken()
        driver = H2Driver(self.loop, self.conn, self.inbuf)
        if upgrade is not None:
            settings = next(v for k, v in upgrade.head.headers if k.lower() == "http2-settings")
            try:
                driver.accept_upgrade(settings, upgrade)
            except Exception:
                self.reject(400, "invalid HTTP2-Settings")
                return
            self.loop.send(self.conn, SWITCH_TO_H2C)
        self.loop.switch(self.conn, driver)


def _asks_for_h2c(request: ParsedRequest) -> bool:
    """An HTTP/1.1 request with `Upgrade: h2c` and one HTTP2-Settings (RFC 7540 §3.2),
    and no body (a body would have to be read before switching)."""
    head = request.head
    if head.version != "HTTP/1.1" or request.body:
        return False
    upgrade = settings = 0
    for name, value in head.headers:
        key = name.lower()
        if key == "upgrade" and "h2c" in comma_tokens([value]):
            upgrade += 1
        elif key == "http2-settings":
            settings += 1
    return upgrade == 1 and settings == 1
