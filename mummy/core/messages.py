"""Everything that crosses threads, one small slotted class per kind.

Tasks go from the IO thread to the workers through the `TaskRing`; messages go
from any thread (workers, and threads calling `WebSocket.send`) to the IO
thread through its `Mailbox`. The IO thread dispatches messages on their type,
so mypy checks every field; nothing here is a tuple with an int tag.

A message marked *ends a task* is posted exactly once for each task a worker
ran, whatever happened in the handler: the ring counts a task in flight until
the IO thread has taken that message (`TaskRing.done`).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar, Final, Literal

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.files import FileSegment
    from mummy.core.h2_driver import SharedSession
    from mummy.core.http1 import ParsedRequest
    from mummy.core.sse import SseEngine
    from mummy.core.streams import ResponseStream
    from mummy.core.tls import TLSState
    from mummy.core.wsengine import WebSocketEngine

# --- tasks: IO thread -> workers ------------------------------------------------


class HttpTask:
    """A complete request: HTTP/1.1, or one HTTP/2 stream (`request.stream_id`)."""

    __slots__ = ("conn", "request")

    def __init__(self, conn: Connection, request: ParsedRequest) -> None:
        self.conn = conn
        self.request = request


class WebSocketEvent(enum.Enum):
    OPEN = "open"  # the 101 is out: run the handler's OPEN
    INPUT = "input"  # received bytes to feed the protocol
    GONE = "gone"  # the TCP connection closed
    END = "end"  # shutdown: queued input dropped; CLOSE, then drop the connection


class WebSocketTask:
    """The next event of one WebSocket; at most one per connection is in flight."""

    __slots__ = ("conn", "data", "engine", "event")

    def __init__(
        self, conn: Connection, engine: WebSocketEngine, event: WebSocketEvent, data: bytes = b""
    ) -> None:
        self.conn = conn
        self.engine = engine
        self.event = event
        self.data = data


class TlsTask:
    """Handshake bytes from the peer, for one handshake step on a worker (which
    owns `tls` until it posts the TlsStep)."""

    __slots__ = ("conn", "data", "tls")

    def __init__(self, conn: Connection, tls: TLSState, data: bytes) -> None:
        self.conn = conn
        self.tls = tls
        self.data = data


class H2Task:
    """Received HTTP/2 bytes, for one connection's session on a worker; at most one
    per connection in flight, so input is parsed in order."""

    __slots__ = ("conn", "data", "session")

    def __init__(self, conn: Connection, session: SharedSession, data: bytes) -> None:
        self.conn = conn
        self.session = session
        self.data = data


class StreamTask:
    """Resume one streamed response's iterator: pull chunks until `budget` bytes are
    produced (what the connection's output bound has room for) or it ends; at most
    one per stream in flight."""

    __slots__ = ("budget", "conn", "stream")

    def __init__(self, conn: Connection, stream: ResponseStream, budget: int) -> None:
        self.conn = conn
        self.stream = stream
        self.budget = budget


Task = HttpTask | WebSocketTask | TlsTask | H2Task | StreamTask

# --- messages: any thread -> the IO thread ---------------------------------------


class Http1Response:
    """A serialized HTTP/1.1 response; close the connection after it unless
    `keep_alive`. Ends a task."""

    __slots__ = ("conn", "keep_alive", "wire")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, wire: bytes, keep_alive: bool) -> None:
        self.conn = conn
        self.wire = wire
        self.keep_alive = keep_alive


class H2Response:
    """One HTTP/2 stream's response, fields already checked. Never reaches the IO
    thread: the connection's `post` frames it on the posting thread
    (h2_driver.SharedSession.post) and posts the H2Output instead."""

    __slots__ = ("body", "conn", "fields", "status", "stream_id")
    ends_task: ClassVar[bool] = True

    def __init__(
        self,
        conn: Connection,
        stream_id: int,
        status: int,
        fields: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.status = status
        self.fields = fields
        self.body = body


class H2Output:
    """Frames an HTTP/2 session produced, and the session's state right after
    (posted under the session's lock, so the last one the IO thread takes is the
    newest). `ended`: how many tasks it ends (H2Tasks and the HttpTasks of the
    streams it answered: one H2Output may frame several), which the H2Driver
    reports to the ring itself; `fed`: it parsed this connection's H2Task, whose
    `requests` (streams now complete) go to the ring."""

    __slots__ = (
        "active_streams",
        "closed",
        "conn",
        "draining",
        "ended",
        "fed",
        "requests",
        "wire",
    )
    ends_task: ClassVar[bool] = False  # ended times over, counted by the H2Driver

    def __init__(
        self,
        conn: Connection,
        wire: bytes,
        *,
        ended: int,
        fed: bool,
        requests: list[ParsedRequest],
        active_streams: int,
        closed: bool,
        draining: bool,
    ) -> None:
        self.conn = conn
        self.wire = wire
        self.ended = ended
        self.fed = fed
        self.requests = requests
        self.active_streams = active_streams
        self.closed = closed
        self.draining = draining


class H2Refuse:
    """Shutdown: an HTTP/2 stream no worker started; framed like H2Response."""

    __slots__ = ("conn", "stream_id")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id


class Upgrade:
    """A 101 response; the connection then speaks WebSocket. Ends a task."""

    __slots__ = ("conn", "engine", "wire")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, wire: bytes, engine: WebSocketEngine) -> None:
        self.conn = conn
        self.wire = wire
        self.engine = engine


class TlsStep:
    """A handshake step's output; `finished` None when the handshake failed (or was
    refused at shutdown): the connection is closed. Ends a task."""

    __slots__ = ("conn", "finished", "out")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, out: bytes, finished: bool | None) -> None:
        self.conn = conn
        self.out = out
        self.finished = finished


class WebSocketDone:
    """A WebSocket event task finished. Ends a task."""

    __slots__ = ("conn",)
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


class WebSocketFrame:
    """A frame to write; `engine` counts it until the IO thread takes it."""

    __slots__ = ("conn", "engine", "frame")
    ends_task: ClassVar[bool] = False

    def __init__(self, conn: Connection, frame: bytes, engine: WebSocketEngine) -> None:
        self.conn = conn
        self.frame = frame
        self.engine = engine


class WebSocketClosing:
    """Our Close frame: write it, then wait for the peer's (websocket_close_timeout)."""

    __slots__ = ("conn", "frame")
    ends_task: ClassVar[bool] = False

    def __init__(self, conn: Connection, frame: bytes) -> None:
        self.conn = conn
        self.frame = frame


class WebSocketDrop:
    """Close the TCP connection once pending output is written."""

    __slots__ = ("conn",)
    ends_task: ClassVar[bool] = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


class WebSocketAbort:
    """Shutdown: the peer did not finish the Close handshake in time; close now."""

    __slots__ = ("conn",)
    ends_task: ClassVar[bool] = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


class StreamStart:
    """A handler answered with a stream (respond_stream) or an EventStream
    (respond_sse): `wire` is what to write now (an EventStream's HTTP/1.1 head; a
    streamed response's head waits for its first chunk). Ends a task."""

    __slots__ = ("conn", "stream", "wire")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, stream: ResponseStream | SseEngine, wire: bytes) -> None:
        self.conn = conn
        self.stream = stream
        self.wire = wire


class FileStart:
    """A file response over plaintext HTTP/1.1: write the head, then the segment
    with os.sendfile from the IO thread. Ends a task."""

    __slots__ = ("conn", "segment", "wire")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, wire: bytes, segment: FileSegment) -> None:
        self.conn = conn
        self.wire = wire
        self.segment = segment


class StreamData:
    """HTTP/1.x bytes of a stream, framed; `last`: the stream is over (an
    EventStream's end: `abort` closes the connection instead of keeping it)."""

    __slots__ = ("abort", "conn", "last", "stream", "wire")
    ends_task: ClassVar[bool] = False

    def __init__(
        self,
        conn: Connection,
        stream: ResponseStream | SseEngine,
        wire: bytes,
        *,
        last: bool = False,
        abort: bool = False,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.wire = wire
        self.last = last
        self.abort = abort


class H2StreamData:
    """An HTTP/2 stream's part of a streamed response or EventStream: its head
    (`status` not None), data, its end (`end`) or a reset (`reset`). Framed in the
    session like H2Response (h2_driver.SharedSession.post), never reaching the IO
    thread."""

    __slots__ = ("conn", "data", "end", "fields", "owner", "reset", "status", "stream_id")
    ends_task: ClassVar[bool] = False

    def __init__(
        self,
        conn: Connection,
        stream_id: int,
        owner: ResponseStream | SseEngine,
        data: bytes = b"",
        *,
        status: int | None = None,
        fields: list[tuple[str, str]] | None = None,
        end: bool = False,
        reset: bool = False,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.owner = owner
        self.data = data
        self.status = status
        self.fields = fields
        self.end = end
        self.reset = reset


class StreamOutcome(enum.Enum):
    PAUSED = "paused"  # the budget is spent: resume when the output bound has room
    ENDED = "ended"  # the body is complete (or a 500 replaced it)
    FAILED = "failed"  # the iterator raised after the head: cut (HTTP/1.1 close, h2 reset)
    CANCELLED = "cancelled"  # the client left or the server closes: the iterator is closed


class StreamYield:
    """A StreamTask finished, with what became of the stream. Ends a task. Over
    HTTP/2 it is posted after the H2Output that framed the task's data."""

    __slots__ = ("conn", "outcome", "stream")
    ends_task: ClassVar[bool] = True

    def __init__(self, conn: Connection, stream: ResponseStream, outcome: StreamOutcome) -> None:
        self.conn = conn
        self.stream = stream
        self.outcome = outcome


class StreamCancel:
    """The closing thread: end this stream now (Server.close()'s deadline)."""

    __slots__ = ("conn", "stream")
    ends_task: ClassVar[bool] = False

    def __init__(self, conn: Connection, stream: ResponseStream) -> None:
        self.conn = conn
        self.stream = stream


class Wake(enum.Enum):
    """No payload: look at the loop's control flags (set by the closing thread).
    An enum of one, so that `msg is WAKE` is the whole test (and mypy narrows on it)."""

    WAKE = "wake"


WAKE: Final = Wake.WAKE

Message = (
    Http1Response
    | H2Response
    | H2Refuse
    | H2Output
    | Upgrade
    | TlsStep
    | WebSocketDone
    | WebSocketFrame
    | WebSocketClosing
    | WebSocketDrop
    | WebSocketAbort
    | StreamStart
    | FileStart
    | StreamData
    | H2StreamData
    | StreamYield
    | StreamCancel
    | Literal[Wake.WAKE]
)
