"""Server-Sent Events (WHATWG HTML §9.2) for one stream: the machinery under
`mummy.EventStream`, which formats the events.

No worker is held while a stream is open: any thread calls `write`, which frames
the bytes (HTTP/1.1 chunked, HTTP/1.0 raw, HTTP/2 DATA through the session) and
posts them to the IO thread.

Concurrency contract: `_lock` (re-entrant) guards `closed` and `_unsent` (bytes
posted and not yet taken by the IO thread or the HTTP/2 session). `socket_backlog` (the
connection's unsent output) is written by the IO thread and `h2_pending` (data
waiting for this stream's flow-control window) under the HTTP/2 session's lock;
writers read both without the lock: a stale value only moves the moment a slow
reader is cut off by one event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mummy.core.messages import H2StreamData, StreamData
from mummy.core.streams import CHUNKED_END, StreamRegistry, chunk

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.messages import Message

log = logging.getLogger("mummy")

KEEPALIVE_COMMENT = b":\n\n"


class SseEngine:
    """One EventStream's transport; see the module's contract. `handle` is the
    user's `mummy.EventStream` (set by whoever made both)."""

    __slots__ = (
        "_chunked",
        "_lock",
        "_post",
        "_registry",
        "_send_buffer_len",
        "_unsent",
        "closed",
        "conn",
        "h2_pending",
        "handle",
        "keep_alive",
        "socket_backlog",
        "stream_id",
    )

    def __init__(
        self,
        conn: Connection,
        stream_id: int,
        *,
        chunked: bool,
        keep_alive: bool,
        send_buffer_len: int,
        registry: StreamRegistry,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.handle: object = None
        self.keep_alive = keep_alive  # HTTP/1.x: the connection stays open after the stream
        self._chunked = chunked
        self._post: Callable[[Message], None] = conn.post
        self._send_buffer_len = send_buffer_len
        self._registry = registry
        # Re-entrant: over HTTP/2 a post under it may frame at once, and the session
        # then calls `taken` (or `stream_gone`) on this thread. Another thread's session
        # work never waits for it while holding it: `_submit` does not block.
        self._lock = threading.RLock()
        self._unsent = 0
        self.closed = False
        self.socket_backlog = 0
        self.h2_pending = 0

    def write(self, payload: bytes) -> bool:
        """Any thread: queue one or more whole events; False once the stream is
        closed (or closed now: the reader let more than the bound pile up)."""
        with self._lock:
            if self.closed:
                return False
            if self._unsent + self.socket_backlog + self.h2_pending > self._send_buffer_len:
                overflow = True
                self.closed = True
            else:
                overflow = False
                msg, size = self._framed(payload)
                self._unsent += size
                self._post(msg)
        if overflow:
            log.warning("EventStream send buffer full (slow reader): closing %r", self.handle)
            self._registry.discard(self)
            # The reader is not reading: a clean end could not reach it either.
            if self.stream_id:
                self._post(H2StreamData(self.conn, self.stream_id, self, reset=True))
            else:
                self._post(StreamData(self.conn, self, b"", last=True, abort=True))
            return False
        return True

    def close(self) -> None:
        """Any thread: end the stream cleanly (once); what was sent still goes out."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self.stream_id:
                self._post(H2StreamData(self.conn, self.stream_id, self, end=True))
            else:
                end = CHUNKED_END if self._chunked else b""
                self._post(StreamData(self.conn, self, end, last=True))
        self._registry.discard(self)

    def _framed(self, payload: bytes) -> tuple[Message, int]:
        """The message for `payload` and the size `taken` will be told."""
        if self.stream_id:
            return H2StreamData(self.conn, self.stream_id, self, payload), len(payload)
        wire = chunk(payload) if self._chunked else payload
        return StreamData(self.conn, self, wire), len(wire)

    # --- the IO thread and the HTTP/2 session --------------------------------------

    def taken(self, size: int) -> None:
        """`size` bytes of a write left the queue (the IO thread, or the session)."""
        with self._lock:
            self._unsent -= size

    def stream_gone(self) -> None:
        """The client left (EOF, a failed write, an HTTP/2 reset) or the stream ended."""
        with self._lock:
            self.closed = True
        self._registry.discard(self)
