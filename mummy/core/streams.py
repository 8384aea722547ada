"""Streamed responses (`Request.respond_stream`): a body pulled from an iterator on
workers, a bounded amount at a time, so that a slow reader holds output, never a
worker.

The iterator is resumed by StreamTasks, at most one per stream in flight, on
whichever worker is free. The IO thread puts a task only while the connection's
unsent output (HTTP/2: plus what waits for this stream's flow-control window) is
at most half of `stream_buffer_len`, with a budget of what the bound has room
for; the worker pulls chunks until it has produced the budget, posting each chunk
at once (a chunk is written as soon as it exists), then ends the task with a
StreamYield. So unsent output stays under the bound plus one chunk.

Concurrency contract: `_iterator`, `_context`, `_compressor`, `_started` and
`_left` belong to the worker running the stream's task (one at a time; each
resume runs in the stream's own contextvars.Context). `busy` and `done` belong
to the IO thread. `cancelled` is a flag any thread may set (the IO thread when
the client leaves, the HTTP/2 session when the client resets the stream, the
closing thread at close()'s deadline) and the worker reads between chunks: a
plain attribute store, atomic on both builds. `h2_pending` is written under the
HTTP/2 session's lock and read by the IO thread (a stale value delays a resume
until the next H2Output or flush, which re-checks).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from mummy.core.compression import StreamCompressor, stream_compressor
from mummy.core.config import ServerConfig
from mummy.core.messages import (
    H2StreamData,
    StreamData,
    StreamOutcome,
    StreamTask,
    StreamYield,
)
from mummy.core.response import CHUNKED, StreamHead, error_response, h2_error_response

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.messages import Message

log = logging.getLogger("mummy")

CHUNKED_END = b"0\r\n\r\n"  # RFC 9112 §7.1: the last chunk, no trailers


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); never call it with b""."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class StreamRegistry:
    """One loop's open streams (streamed responses and EventStreams), for close().

    Concurrency contract: workers add, whoever ends a stream discards, the closing
    thread reads; `_lock` guards `_open`."""

    __slots__ = ("_lock", "_open")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[object] = set()

    def add(self, stream: object) -> None:
        with self._lock:
            self._open.add(stream)

    def discard(self, stream: object) -> None:
        with self._lock:
            self._open.discard(stream)

    def snapshot(self) -> list[object]:
        with self._lock:
            return list(self._open)

    def wait_empty(self, until: float, kind: type | None = None) -> bool:
        """Wait until `until` (monotonic) for every stream (of `kind`) to end."""
        while True:
            with self._lock:
                if not any(kind is None or isinstance(s, kind) for s in self._open):
                    return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.02)


class ResponseStream:
    """One streamed response; see the module's contract."""

    __slots__ = (
        "_body",
        "_compressor",
        "_context",
        "_iterator",
        "_left",
        "_post",
        "_registry",
        "_started",
        "bound",
        "busy",
        "cancelled",
        "conn",
        "done",
        "h2_pending",
        "head",
        "keep_alive",
        "stream_id",
    )

    def __init__(
        self,
        conn: Connection,
        stream_id: int,
        head: StreamHead,
        body: Iterable[bytes | str],
        iterator: Iterator[bytes | str],
        context: contextvars.Context,
        config: ServerConfig,
        registry: StreamRegistry,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.head = head
        self.bound = config.stream_buffer_len
        self.keep_alive = head.keep_alive
        self._body = body
        self._iterator = iterator
        self._context = context
        self._post: Callable[[Message], None] = conn.post
        self._registry = registry
        self._compressor: StreamCompressor | None = None
        if head.coding != "identity":
            self._compressor = stream_compressor(
                head.coding, gzip_level=config.gzip_level, zstd_level=config.zstd_level
            )
        self._started = False  # the head went out (with the first chunk)
        self._left = head.length  # bytes the handler's Content-Length still promises
        self.busy = False
        self.done = False
        self.cancelled = False
        self.h2_pending = 0

    # --- the IO thread -----------------------------------------------------------

    def next_task(self, backlog: int) -> StreamTask | None:
        """The task to put now, given the unsent bytes ahead of this stream's; None
        while a task is in flight, the stream is over, or the bound has no room."""
        if self.busy or self.done:
            return None
        if self.cancelled:
            budget = 0  # a task that only closes the iterator
        elif backlog > self.bound // 2:
            return None
        else:
            budget = self.bound - backlog
        self.busy = True
        return StreamTask(self.conn, self, budget)

    def task_ended(self, outcome: StreamOutcome) -> None:
        self.busy = False
        if outcome is not StreamOutcome.PAUSED:
            self.done = True

    def cancel(self) -> None:
        """Any thread: close the iterator at its next resume (the IO thread puts one
        for an idle stream when it sees a StreamCancel or the connection closes)."""
        self.cancelled = True

    def stream_gone(self) -> None:
        """The HTTP/2 session: the stream ended or was reset."""
        self.cancelled = True

    def taken(self, size: int) -> None:
        """A part of this stream left the queue (bounded by the budget instead)."""

    # --- a worker ----------------------------------------------------------------

    def resume(self, budget: int) -> None:
        """Pull chunks until `budget` bytes are produced or the iterator ends; posts
        each chunk, then exactly one StreamYield (which ends the task)."""
        outcome = StreamOutcome.PAUSED
        try:
            outcome = self._pull(budget)
        except BaseException:
            log.exception("the body iterator of a streamed response raised")
            outcome = self._fail()
        finally:
            if outcome is not StreamOutcome.PAUSED:
                self._registry.discard(self)
            self._post(StreamYield(self.conn, self, outcome))

    def close_iterator(self) -> None:
        """Call the body's close() (PEP 3333's rule for WSGI results; a generator's
        `finally` runs), in the stream's context; logged if it raises."""
        close = getattr(self._body, "close", None)
        if close is None:
            close = getattr(self._iterator, "close", None)
        if close is None:
            return
        try:
            self._context.run(close)
        except Exception:
            log.exception("closing the body iterator of a streamed response raised")

    def _pull(self, budget: int) -> StreamOutcome:
        produced = 0
        while True:
            if self.cancelled:
                self.close_iterator()
                return StreamOutcome.CANCELLED
            try:
                item = self._context.run(next, self._iterator)
            except StopIteration:
                self.close_iterator()  # PEP 3333: a WSGI result is closed however it ends
                return self._end()
            if isinstance(item, str):
                data = item.encode("utf-8")
            elif isinstance(item, (bytes, bytearray, memoryview)):
                data = bytes(item)
            else:
                raise TypeError(f"a streamed body must yield bytes or str, not {type(item)!r}")
            if data and self._compressor is not None:
                data = self._compressor.chunk(data)
            if self._left is not None and len(data) > self._left:
                self._send(data[: self._left])
                log.error("a streamed body yielded more than its Content-Length")
                self.close_iterator()
                return self._cut()
            produced += self._send(data)
            if produced >= budget:
                return StreamOutcome.PAUSED

    def _end(self) -> StreamOutcome:
        tail = self._compressor.finish() if self._compressor is not None else b""
        if self._left is not None and self._left != len(tail):
            self._send(tail[: self._left])
            log.error("a streamed body ended before its Content-Length was sent")
            return self._cut()
        self._send(tail, end=True)
        return StreamOutcome.ENDED

    def _send(self, data: bytes, *, end: bool = False) -> int:
        """Post `data` (with the head, the first time; `end`: the body's last part)."""
        head = self.head
        if self._left is not None:
            self._left -= len(data)
        if self.stream_id:
            first = not self._started
            if data or end or first:
                self._post(
                    H2StreamData(
                        self.conn,
                        self.stream_id,
                        self,
                        data,
                        status=head.status if first else None,
                        fields=head.fields if first else None,
                        end=end,
                    )
                )
            self._started = True
            return len(data)
        wire = data
        if head.framing == CHUNKED:
            wire = chunk(data) if data else b""
            if end:
                wire += CHUNKED_END
        if not self._started:
            wire = head.wire + wire
            self._started = True
        if wire:
            self._post(StreamData(self.conn, self, wire))
        return len(wire)

    def _fail(self) -> StreamOutcome:
        """The iterator raised: a 500 if nothing was sent yet, else the body is cut."""
        self.close_iterator()
        if self._started:
            return self._cut()
        self._started = True
        why = "the server failed to produce the response"
        if self.stream_id:
            fields, body = h2_error_response(500, why)
            answer = H2StreamData(
                self.conn, self.stream_id, self, body, status=500, fields=fields, end=True
            )
            self._post(answer)
        else:
            self.keep_alive = False
            self._post(StreamData(self.conn, self, error_response(500, why)))
        return StreamOutcome.ENDED

    def _cut(self) -> StreamOutcome:
        """The body cannot be completed: HTTP/2 resets the stream; HTTP/1.x closes the
        connection after what was sent (the IO thread does, on FAILED)."""
        if self.stream_id:
            self._post(H2StreamData(self.conn, self.stream_id, self, reset=True))
        return StreamOutcome.FAILED
