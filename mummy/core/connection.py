"""Per-connection state: buffers, the protocol parser, and whose turn it is.

Owned by the IO thread. A worker never touches a Connection's fields; it holds
a reference only to hand its response back through the mailbox.
"""

import socket
from collections import deque
from typing import TYPE_CHECKING

from mummy.core.http1 import RequestParser
from mummy.core.tls import TLSState

if TYPE_CHECKING:
    from mummy.core.h2session import H2Session


class Connection:
    __slots__ = (
        "busy",
        "close_after_send",
        "closed",
        "deadline",
        "eof",
        "events",
        "fd",
        "h2",
        "inbuf",
        "lingering",
        "out",
        "out_len",
        "parser",
        "remote_address",
        "sock",
        "stalled",
        "timer_key",
        "timer_kind",
        "tls",
        "ws",
        "ws_gone_pending",
    )

    def __init__(self, sock: socket.socket, remote_address: str, parser: RequestParser) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.remote_address = remote_address
        self.parser = parser
        self.inbuf = bytearray()
        self.out: deque[memoryview] = deque()
        self.out_len = 0  # bytes queued in `out`
        self.events = 0  # the epoll mask currently registered
        self.busy = False  # a request of this connection is with a worker
        self.eof = False  # the peer shut down its sending side
        self.close_after_send = False  # close once `out` is flushed
        self.lingering = False  # write side shut, discarding input until the timer fires
        self.stalled = False  # a complete request waits for room in the ring
        self.closed = False
        # The connection's one timer (mummy.core.timers): what it waits for, and until when.
        self.deadline = 0.0
        self.timer_kind = 0
        self.timer_key = 0
        # WebSocket mode, after a 101: the WebSocket object (opaque to the loop).
        self.ws: object | None = None
        # HTTP/2 mode (mummy.core.h2session.H2Session), after the preface or ALPN "h2".
        self.h2: H2Session | None = None
        # TLS, when the listener has an SSL context (mummy.core.tls.TLSState).
        self.tls: TLSState | None = None
        self.ws_gone_pending = False  # closed while an event ran: report it when that ends
