"""WebSocket on the IO thread: received bytes go to a worker (one event task at a
time per connection, in order), frames from any thread are written, the close
handshake and keepalive pings are timed. The protocol itself (wsproto,
permessage-deflate) runs on workers: mummy.core.wsengine.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from mummy.core.connection import CLOSE_HANDSHAKE, PING, Timer
from mummy.core.driver import MAX_PENDING_OUTPUT, Driver
from mummy.core.messages import (
    Message,
    WebSocketAbort,
    WebSocketClosing,
    WebSocketDone,
    WebSocketDrop,
    WebSocketEvent,
    WebSocketFrame,
    WebSocketTask,
)

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.loop import EventLoop
    from mummy.core.wsengine import WebSocketEngine

log = logging.getLogger("mummy")

# An empty, unmasked Ping frame (RFC 6455 §5.5.2); frames from other threads
# arrive whole, so it never lands inside one.
PING_FRAME = b"\x89\x00"


class WebSocketDriver(Driver):
    __slots__ = ("busy", "engine", "gone_pending", "inbuf", "ping_timer")
    protocol = "websocket"

    linger_on_close = False

    def __init__(
        self, loop: EventLoop, conn: Connection, engine: WebSocketEngine, inbuf: bytearray
    ) -> None:
        super().__init__(loop, conn)
        self.engine = engine
        self.inbuf = inbuf  # bytes after the upgrade request: the first frames
        self.busy = False  # an event task of this connection is with a worker
        self.gone_pending = False  # closed while an event ran: report it when that ends
        self.ping_timer = Timer(conn)

    def start(self) -> None:
        self._task(WebSocketEvent.OPEN)
        interval = self.loop.config.websocket_ping_interval
        if interval:
            self.loop.arm(self.ping_timer, interval, PING)

    def received(self, data: bytes) -> None:
        self.inbuf += data
        if not self.busy:
            self._task(WebSocketEvent.INPUT)
        elif len(self.inbuf) > self.loop.config.max_buffered:
            self.loop.update_events(self.conn)

    def wants_input(self) -> bool:
        if self.busy:
            return len(self.inbuf) <= self.loop.config.max_buffered
        return self.conn.out_len <= MAX_PENDING_OUTPUT

    def flushed(self) -> None:
        self.engine.socket_backlog = self.conn.out_len

    def timer_fired(self, kind: int) -> None:
        if kind != PING:
            self.loop.close(self.conn)  # the peer did not answer our Close in time
        elif self.engine.awaiting_pong:
            log.debug("WebSocket peer %s stopped answering pings", self.conn.remote_address)
            self.loop.close(self.conn)
        else:
            self.engine.awaiting_pong = True
            self.loop.send(self.conn, PING_FRAME)
            interval = self.loop.config.websocket_ping_interval
            assert interval is not None
            self.loop.arm(self.ping_timer, interval, PING)

    def message(self, msg: Message) -> None:
        conn, loop = self.conn, self.loop
        if isinstance(msg, WebSocketFrame):
            msg.engine.taken(len(msg.frame))
            if not conn.close_when_flushed:  # nothing after a Close we wrote ourselves
                loop.send(conn, msg.frame)
                self.engine.socket_backlog = conn.out_len
        elif isinstance(msg, WebSocketDone):
            self.busy = False
            if conn.closed:
                if self.gone_pending:
                    self._task(WebSocketEvent.GONE)
            elif self.inbuf:
                self._task(WebSocketEvent.INPUT)
            else:
                loop.update_events(conn)
        elif conn.closed:
            return
        elif isinstance(msg, WebSocketClosing):
            loop.send(conn, msg.frame)
            loop.arm(conn.timer, loop.config.websocket_close_timeout, CLOSE_HANDSHAKE)
        elif isinstance(msg, WebSocketDrop):
            loop.close_after_output(conn, graceful=False)
        elif isinstance(msg, WebSocketAbort):
            loop.close(conn)  # a worker still gives the handler its CLOSE

    def closed(self) -> None:
        self.loop.wheel.remove(self.ping_timer)
        if self.busy:
            self.gone_pending = True
        elif not self.loop.finishing:  # once finishing, the workers are gone
            self._task(WebSocketEvent.GONE)

    def last_word(self) -> bytes:
        # A Close frame with 1011 (RFC 6455 §7.4.1: an unexpected condition); frames
        # are queued whole, so it starts on a frame boundary.
        return b"\x88\x02" + struct.pack("!H", 1011)

    def _task(self, event: WebSocketEvent) -> None:
        """Hand the next event to a worker (one at a time)."""
        data = b""
        if event is WebSocketEvent.INPUT:
            data = bytes(self.inbuf)
            self.inbuf.clear()
        elif event is WebSocketEvent.GONE:
            self.gone_pending = False
        self.busy = True
        self.loop.ring.put(WebSocketTask(self.conn, self.engine, event, data), force=True)
        self.loop.update_events(self.conn)
