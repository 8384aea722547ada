"""HTTP/2 on the IO thread (with the optional h2 package): bytes through the
connection's H2Session, each complete stream to the workers, their responses
framed back; a drain's frames are written at once. Streams of one connection
run in parallel.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mummy.core.connection import IDLE
from mummy.core.driver import MAX_PENDING_OUTPUT, Driver
from mummy.core.http1 import ParsedRequest
from mummy.core.messages import H2Refuse, H2Response, HttpTask, Message

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.h2session import H2Session
    from mummy.core.loop import EventLoop


class H2Driver(Driver):
    __slots__ = ("_pending", "_upgrade", "session")

    def __init__(self, loop: EventLoop, conn: Connection, inbuf: bytearray) -> None:
        # Imported here: h2 is an optional extra, needed once a client speaks HTTP/2.
        from mummy.core.h2session import H2Session

        super().__init__(loop, conn)
        config = loop.config
        self.session: H2Session = H2Session(
            max_headers_len=config.max_headers_len,
            max_body_len=config.max_body_len,
            max_streams=config.h2_max_concurrent_streams,
        )
        self._pending = bytes(inbuf)  # bytes that came with the switch
        self._upgrade: ParsedRequest | None = None

    def accept_upgrade(self, http2_settings: str, request: ParsedRequest) -> None:
        """h2c through `Upgrade: h2c`: the upgrade request becomes stream 1.
        Raises when HTTP2-Settings is invalid."""
        self.session.start_upgrade(http2_settings)
        self._upgrade = self.session.upgrade_request(request.head, request.body)

    def start(self) -> None:
        if self._upgrade is None:
            self.session.start()
        else:
            self._dispatch(self._upgrade)
            self._upgrade = None
        data, self._pending = self._pending, b""
        self.received(data)

    def received(self, data: bytes) -> None:
        for request in self.session.receive(data):
            self._dispatch(request)
        self._write()

    def message(self, msg: Message) -> None:
        if self.conn.closed:
            return
        if isinstance(msg, H2Response):
            self.session.respond(msg.stream_id, msg.status, msg.fields, msg.body)
        elif isinstance(msg, H2Refuse):
            self.session.refuse(msg.stream_id)
        else:
            return
        self.loop.after_drain.add(self)

    def after_messages(self) -> None:
        self._write()

    def wants_input(self) -> bool:
        return self.conn.out_len <= MAX_PENDING_OUTPUT

    def peer_closed(self) -> None:
        if self.conn.out:
            self.loop.close_after_output(self.conn, graceful=True)
        else:
            self.loop.close(self.conn)

    def timer_fired(self, kind: int) -> None:
        self.loop.close(self.conn)  # idle (no stream open) past keep_alive_timeout

    def server_refusals_done(self) -> None:
        self.session.close()  # GOAWAY; the streams with workers are still answered
        self._write()

    def last_word(self) -> bytes:
        return self.session.fail()

    def _dispatch(self, request: ParsedRequest) -> None:
        if self.loop.closing:
            # RFC 9113 §8.7: a stream refused before any processing may be retried.
            self.session.refuse(request.stream_id)
            return
        request.received_at = time.monotonic()
        # Bounded by SETTINGS_MAX_CONCURRENT_STREAMS per connection.
        self.loop.ring.put(HttpTask(self.conn, request), force=True)

    def _write(self) -> None:
        conn, loop, session = self.conn, self.loop, self.session
        out = session.data_to_send()
        if out:
            loop.send(conn, out)
        if conn.closed:
            return
        if session.closed or (session.draining and not session.active_streams):
            loop.close_after_output(conn, graceful=True)
            return
        if session.active_streams:
            loop.wheel.disarm(conn.timer)
        elif conn.timer.timer_kind != IDLE:
            loop.arm(conn.timer, loop.config.keep_alive_timeout, IDLE)
        loop.update_events(conn)
