"""HTTP/2 with the optional h2 package: the IO thread moves bytes, workers run h2.

The connection's H2Session (the pure-Python h2 state machine: frames, HPACK, flow
control) is shared by the workers under one lock (`SharedSession`):

- received bytes go to a worker as an H2Task, one at a time per connection, so
  input is parsed in order; the worker posts an H2Output with the frames h2 wrote
  and the streams the input completed, which the IO thread puts in the ring;
- a stream's handler runs on any worker, in parallel with the connection's other
  streams; its response is framed on the thread that responds (the connection's
  `post` is `SharedSession.post`), which posts an H2Output with the frames;
- the IO thread writes the frames of a whole mailbox drain at once, and keeps the
  idle timer and the connection's end from the state each H2Output carries.

Concurrency contract: `SharedSession.lock` guards the session on every thread.
Messages are posted while it is held, so the mailbox holds them in the order h2
wrote their bytes, and the last state the IO thread takes is the newest. The IO
thread takes the lock only outside the hot path: at start, at shutdown, to refuse
a stream and for its last word. Every other attribute of H2Driver is the IO
thread's.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from mummy.core.connection import IDLE, SSE_KEEPALIVE, Timer
from mummy.core.driver import MAX_PENDING_OUTPUT, Driver
from mummy.core.http1 import ParsedRequest
from mummy.core.messages import (
    H2Output,
    H2Refuse,
    H2Response,
    H2StreamData,
    H2Task,
    HttpTask,
    Message,
    StreamCancel,
    StreamStart,
    StreamYield,
)
from mummy.core.sse import KEEPALIVE_COMMENT, SseEngine
from mummy.core.streams import ResponseStream

if TYPE_CHECKING:
    from collections.abc import Callable

    from mummy.core.connection import Connection
    from mummy.core.h2session import H2Session
    from mummy.core.loop import EventLoop

    Operation = Callable[[H2Session], object]
    Queued = bytes | H2Response | H2Refuse | H2StreamData | StreamYield | Operation

log = logging.getLogger("mummy")

# How long the IO thread waits for the session's lock for its last word (a worker
# holds it only while h2 runs, never while a handler does).
LAST_WORD_WAIT_S = 1.0


class SharedSession:
    """One connection's H2Session, its lock and its queue; see the module's contract."""

    __slots__ = ("_mailbox_post", "_queue", "conn", "lock", "session")

    def __init__(
        self, conn: Connection, session: H2Session, mailbox_post: Callable[[Message], None]
    ) -> None:
        self.conn = conn
        self.session = session
        self.lock = threading.Lock()
        self._queue: deque[Queued] = deque()
        self._mailbox_post = mailbox_post

    def feed(self, data: bytes) -> None:
        """Worker (an H2Task): received bytes, parsed in order."""
        self._submit(data)

    def post(self, msg: Message) -> None:
        """Any thread: the connection's `post`. A stream's response (or refusal, or
        streamed part) is framed in the session, and a StreamYield follows its
        stream's frames; anything else goes to the mailbox."""
        if isinstance(msg, (H2Response, H2Refuse, H2StreamData, StreamYield)):
            self._submit(msg)
        else:
            self._mailbox_post(msg)

    def run(self, operation: Operation) -> None:
        """IO thread: run `operation` on the session (start, GOAWAY, a refusal); its
        frames come back in an H2Output like the others."""
        self._submit(operation)

    def last_word(self) -> bytes:
        """IO thread, when this connection fails: a GOAWAY (INTERNAL_ERROR)."""
        word = b""
        if self.lock.acquire(timeout=LAST_WORD_WAIT_S):
            try:
                word = self.session.fail()
                self._drain()  # what is queued still ends its tasks
            finally:
                self.lock.release()
        self._submit(None)
        return word

    def _submit(self, item: Queued | None) -> None:
        # Whoever holds the lock frames everything queued, so a thread that finds it
        # taken leaves its item and goes on: no thread waits (or spins) on another's
        # h2 work. The holder looks at the queue again after releasing the lock, so an
        # item queued just before the release is not left behind.
        queue = self._queue
        if item is not None:
            queue.append(item)
        while queue and self.lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self.lock.release()

    def _drain(self) -> None:
        """Holding the lock: run every queued item; post their frames and the state."""
        session, queue = self.session, self._queue
        ended, fed, requests = 0, False, []
        yields: list[StreamYield] = []
        wire = b""
        try:
            while queue:
                item = queue.popleft()
                try:
                    if isinstance(item, H2StreamData):
                        session.stream_send(
                            item.stream_id,
                            item.owner,
                            item.data,
                            status=item.status,
                            fields=item.fields,
                            end=item.end,
                            reset=item.reset,
                        )
                        item.owner.taken(len(item.data))
                    elif isinstance(item, StreamYield):
                        yields.append(item)
                    elif isinstance(item, bytes):
                        ended += 1
                        fed = True
                        requests += session.receive(item)
                    elif isinstance(item, H2Response):
                        ended += 1
                        session.respond(item.stream_id, item.status, item.fields, item.body)
                    elif isinstance(item, H2Refuse):
                        ended += 1
                        session.refuse(item.stream_id)
                    else:
                        item(session)
                except Exception:
                    # A bug in h2 or here: this connection ends with a GOAWAY, not the
                    # server.
                    log.exception("HTTP/2 session of %s failed", self.conn.remote_address)
                    session.fail()
            wire = session.data_to_send()
        finally:
            # Whatever failed above, the tasks taken from the queue end here (the ring
            # counts them) and the IO thread learns the session's state.
            self._mailbox_post(
                H2Output(
                    self.conn,
                    wire,
                    ended=ended,
                    fed=fed,
                    requests=requests,
                    active_streams=session.active_streams,
                    closed=session.closed,
                    draining=session.draining,
                )
            )
            for done in yields:
                self._mailbox_post(done)  # after the frames of the data it yielded


class H2Driver(Driver):
    __slots__ = (
        "_busy",
        "_inbuf",
        "_keepalive",
        "_out",
        "_pending",
        "_state",
        "_streams",
        "_upgrade",
        "_waiting",
        "shared",
    )
    protocol = "http2"

    def __init__(self, loop: EventLoop, conn: Connection, inbuf: bytearray) -> None:
        # Imported here: h2 is an optional extra, needed once a client speaks HTTP/2.
        from mummy.core.h2session import H2Session

        super().__init__(loop, conn)
        config = loop.config
        session = H2Session(
            max_headers_len=config.max_headers_len,
            max_body_len=config.max_body_len,
            max_streams=config.h2_max_concurrent_streams,
        )
        self.shared = SharedSession(conn, session, conn.post)
        self._pending = bytes(inbuf)  # bytes that came with the switch
        self._upgrade: ParsedRequest | None = None
        self._busy = False  # an H2Task of this connection is with a worker
        self._inbuf = bytearray()  # input that arrived meanwhile
        self._out: list[bytes] = []  # frames of this mailbox drain
        self._state: H2Output | None = None  # the newest state, applied after the drain
        self._waiting: deque[ParsedRequest] = deque()  # streams the full ring refused
        # Streamed responses and EventStreams open on this connection, by stream id.
        self._streams: dict[int, ResponseStream | SseEngine] = {}
        self._keepalive: Timer | None = None  # the EventStreams' keepalive comments

    def accept_upgrade(self, http2_settings: str, request: ParsedRequest) -> None:
        """h2c through `Upgrade: h2c`: the upgrade request becomes stream 1.
        Raises when HTTP2-Settings is invalid. (No worker has the session yet.)"""
        session = self.shared.session
        session.start_upgrade(http2_settings)
        self._upgrade = session.upgrade_request(request.head, request.body)

    def start(self) -> None:
        self.conn.post = self.shared.post  # responses are framed where they are made
        if self._upgrade is None:
            self.shared.run(_start)
        else:
            self.shared.run(_settings)  # the upgrade started the session
            self._dispatch(self._upgrade)
            self._upgrade = None
        data, self._pending = self._pending, b""
        if data:
            self.received(data)

    def received(self, data: bytes) -> None:
        if self._busy:
            self._inbuf += data
            if len(self._inbuf) > self.loop.config.max_buffered:
                self.loop.update_events(self.conn)
        else:
            self._feed(data)

    def message(self, msg: Message) -> None:
        if isinstance(msg, (StreamStart, StreamYield, StreamCancel)):
            self._stream_message(msg)
            return
        if not isinstance(msg, H2Output):
            return
        ring = self.loop.ring
        for _ in range(msg.ended):  # the tasks it ends, whether or not still connected
            ring.done()
        if msg.fed:
            self._busy = False
        if self.conn.closed:
            return
        if msg.wire:
            self._out.append(msg.wire)
        self._state = msg
        self.loop.after_drain.add(self)
        for request in msg.requests:
            self._dispatch(request)
        if msg.fed and self._inbuf:
            data = bytes(self._inbuf)
            self._inbuf.clear()
            self._feed(data)

    def after_messages(self) -> None:
        conn, loop, state = self.conn, self.loop, self._state
        if conn.close_when_flushed or conn.lingering:
            self._out.clear()  # closing already (a fatal GOAWAY, a last word): no more
            return
        if self._out:
            out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            loop.send(conn, out)
        if conn.closed or state is None:
            return
        if self._streams:
            self._resume_streams()
        if state.closed or (state.draining and not state.active_streams and not self._busy):
            loop.close_after_output(conn, graceful=True)
            return
        if state.active_streams or self._busy or self._waiting:
            loop.wheel.disarm(conn.timer)
        elif conn.timer.timer_kind != IDLE:
            loop.arm(conn.timer, loop.config.keep_alive_timeout, IDLE)
        loop.update_events(conn)

    def ring_has_room(self) -> None:
        waiting, ring = self._waiting, self.loop.ring
        while waiting and not ring.full:
            ring.put(HttpTask(self.conn, waiting.popleft()))
        if waiting:
            self.loop.waiting_for_ring.append(self)
        self.loop.update_events(self.conn)

    def wants_input(self) -> bool:
        if self._waiting or (self._busy and len(self._inbuf) > self.loop.config.max_buffered):
            return False
        return self.conn.out_len <= MAX_PENDING_OUTPUT

    def flushed(self) -> None:
        if self._streams:
            self._resume_streams()

    def closed(self) -> None:
        if self._keepalive is not None:
            self.loop.wheel.remove(self._keepalive)
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            self._gone(stream)

    def peer_closed(self) -> None:
        if self.conn.out:
            self.loop.close_after_output(self.conn, graceful=True)
        else:
            self.loop.close(self.conn)

    def timer_fired(self, kind: int) -> None:
        if kind != SSE_KEEPALIVE:
            self.loop.close(self.conn)  # idle (no stream open) past keep_alive_timeout
            return
        alive = False
        for stream in list(self._streams.values()):
            if isinstance(stream, SseEngine):
                alive = stream.write(KEEPALIVE_COMMENT) or alive
        interval = self.loop.config.sse_keepalive_interval
        if alive and interval is not None and self._keepalive is not None:
            self.loop.arm(self._keepalive, interval, SSE_KEEPALIVE)

    def server_refusals_done(self) -> None:
        # GOAWAY; the streams with workers are still answered.
        self.shared.run(_goaway)

    def last_word(self) -> bytes:
        return self.shared.last_word()

    def server_closing(self) -> None:
        # Streams still waiting for ring room will not get a worker: refused (after
        # the GOAWAY, which does not count them; RFC 9113 §8.7: they may be retried).
        waiting, self._waiting = self._waiting, deque()
        for request in waiting:
            self.shared.run(functools.partial(_refuse, stream_id=request.stream_id))
        self.loop.update_events(self.conn)

    # --- streamed responses and EventStreams ------------------------------------

    def _stream_message(self, msg: StreamStart | StreamYield | StreamCancel) -> None:
        stream = msg.stream
        if isinstance(msg, StreamStart):
            if self.conn.closed:
                self._gone(stream)  # closed while its handler ran
                return
            self._streams[stream.stream_id] = stream
            interval = self.loop.config.sse_keepalive_interval
            if isinstance(stream, SseEngine) and interval is not None:
                if self._keepalive is None:
                    self._keepalive = Timer(self.conn)
                if not self._keepalive.timer_kind:
                    self.loop.arm(self._keepalive, interval, SSE_KEEPALIVE)
        elif isinstance(msg, StreamYield):
            msg.stream.task_ended(msg.outcome)
            if msg.stream.done:
                if self._streams.get(stream.stream_id) is stream:
                    del self._streams[stream.stream_id]
                return
        if isinstance(stream, ResponseStream):
            self._resume(stream)

    def _resume_streams(self) -> None:
        """After output or new frames: resume the streams the bound has room for;
        forget the EventStreams that ended."""
        for stream_id, stream in list(self._streams.items()):
            if isinstance(stream, ResponseStream):
                self._resume(stream)
            elif stream.closed:
                del self._streams[stream_id]
            else:
                stream.socket_backlog = self.conn.out_len

    def _resume(self, stream: ResponseStream) -> None:
        if not self.loop.finishing:
            task = stream.next_task(self.conn.out_len + stream.h2_pending)
            if task is not None:
                self.loop.ring.put(task, force=True)

    def _gone(self, stream: ResponseStream | SseEngine) -> None:
        if isinstance(stream, SseEngine):
            stream.stream_gone()
        else:
            stream.cancel()
            self._resume(stream)  # a task that closes the iterator, unless one runs

    def _feed(self, data: bytes) -> None:
        conn = self.conn
        if conn.timer.timer_kind == IDLE:
            self.loop.wheel.disarm(conn.timer)  # a request may be in these bytes
        self._busy = True
        # One per connection in flight, like a WebSocket's events.
        self.loop.ring.put(H2Task(self.conn, self.shared, data), force=True)

    def _dispatch(self, request: ParsedRequest) -> None:
        loop = self.loop
        if loop.closing:
            # RFC 9113 §8.7: a stream refused before any processing may be retried.
            self.shared.run(functools.partial(_refuse, stream_id=request.stream_id))
            return
        request.received_at = time.monotonic()
        # Streams count against max_pending_requests like HTTP/1.1 requests: when the
        # ring is full they wait here, in order, and the connection is not read.
        if self._waiting or not loop.ring.put(HttpTask(self.conn, request)):
            if not self._waiting:
                loop.waiting_for_ring.append(self)
            self._waiting.append(request)


# Operations the IO thread runs on a session (through SharedSession.run).


def _start(session: H2Session) -> None:
    session.start()


def _settings(session: H2Session) -> None:
    pass  # nothing to do: the H2Output carries what the upgrade framed


def _goaway(session: H2Session) -> None:
    session.close()


def _refuse(session: H2Session, stream_id: int) -> None:
    session.refuse(stream_id)
