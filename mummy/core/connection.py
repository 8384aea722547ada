"""One client connection as its IO loop sees it: the socket, unsent output, its
timers, the TLS record layer, and the driver of the protocol it speaks.

Concurrency contract: everything here belongs to the IO thread of the loop that
accepted the connection, except `remote_address`, `post`, `websockets` and
`streams`, which are set once before any task for the connection exists and are
read by workers (and by any thread sending on a WebSocket or an EventStream). A
worker holds a Connection only to address the messages it posts
(mummy.core.messages) through `post`.
"""

import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from mummy.core.tls import TLSState

if TYPE_CHECKING:
    from mummy.core.driver import Driver
    from mummy.core.files import FileSegment
    from mummy.core.messages import Message
    from mummy.core.streams import StreamRegistry
    from mummy.core.wsregistry import WebSocketRegistry

# What a Timer waits for. The loop handles LINGER itself; drivers handle the rest.
HEAD = 1  # a complete request head (header_timeout; slowloris), or a TLS handshake
BODY = 2  # the next body bytes (body_timeout)
IDLE = 3  # the next request on a kept-alive connection (keep_alive_timeout)
LINGER = 4  # the end of a graceful close (RFC 9112 §9.6)
CLOSE_HANDSHAKE = 5  # the peer's WebSocket Close after ours (websocket_close_timeout)
PING = 6  # the next WebSocket keepalive ping (websocket_ping_interval)
SSE_KEEPALIVE = 7  # the next comment on open EventStreams (sse_keepalive_interval)

# Connection.close_when_flushed
CLOSE_HARD = 1  # close the socket
CLOSE_GRACEFUL = 2  # shut the write side and read (discarding) for a while: RFC 9112 §9.6


class Timer:
    """One deadline of one connection, filed in its loop's TimerWheel. A
    connection may own several (each armed and disarmed on its own)."""

    __slots__ = ("conn", "deadline", "timer_key", "timer_kind")

    def __init__(self, conn: "Connection") -> None:
        self.conn = conn
        self.deadline = 0.0
        self.timer_kind = 0  # one of the constants above; 0: not armed
        self.timer_key = 0  # the wheel bucket it is filed in; 0: none


class Connection:
    __slots__ = (
        "close_when_flushed",
        "closed",
        "driver",
        "eof",
        "events",
        "fd",
        "file",
        "lingering",
        "out",
        "out_len",
        "post",
        "remote_address",
        "sock",
        "streams",
        "timer",
        "tls",
        "websockets",
    )

    def __init__(
        self,
        sock: socket.socket,
        remote_address: str,
        post: "Callable[[Message], None]",
        websockets: "WebSocketRegistry",
        streams: "StreamRegistry",
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.remote_address = remote_address
        # The mailbox of the loop that owns this connection, for workers' messages.
        self.post = post
        # That loop's open WebSockets and streams (for shutdown).
        self.websockets = websockets
        self.streams = streams
        self.out: deque[memoryview] = deque()
        self.out_len = 0  # bytes queued in `out`
        self.events = 0  # the epoll mask currently registered
        self.eof = False  # the peer shut down its sending side
        # Once `out` is flushed: 0 go on, CLOSE_HARD close, CLOSE_GRACEFUL shut and linger.
        self.close_when_flushed = 0
        self.lingering = False  # write side shut, discarding input until the timer fires
        self.closed = False
        self.timer = Timer(self)  # the deadline of whatever the driver waits for
        # A file being sent with os.sendfile after `out` (mummy.core.files).
        self.file: FileSegment | None = None
        # TLS records, once the handshake is done (mummy.core.tls.TLSState).
        self.tls: TLSState | None = None
        self.driver: Driver  # set by the loop right after construction
