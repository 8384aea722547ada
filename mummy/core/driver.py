"""The IO-side half of one protocol on one connection: what the loop calls.

A driver owns its protocol's buffers, scheduling and error answers; the loop
(mummy.core.loop) owns the socket and calls the driver when bytes arrive, when
output has drained, when a timer fires, when a message for the connection comes
back from a worker, and when the server shuts down. The protocol engine itself
may run here (the HTTP/1.1 parser, h2) or on workers (wsproto, a TLS
handshake): the driver only hands tasks to the ring and takes messages back.

All methods run on the IO thread of the connection's loop. Any of them may
raise: the loop then closes that connection only, after `last_word`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

# Stop reading from a connection while this much of its output is unsent.
MAX_PENDING_OUTPUT = 256 * 1024

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.loop import EventLoop
    from mummy.core.messages import Message


class Driver:
    """Defaults for every hook; a protocol overrides what it needs."""

    __slots__ = ("conn", "loop")

    # After `last_word`: shut the write side and linger (RFC 9112 §9.6), or close.
    linger_on_close: ClassVar[bool] = True
    # The `protocol` label of the connections gauge (mummy_connections).
    protocol: ClassVar[str] = "other"

    def __init__(self, loop: EventLoop, conn: Connection) -> None:
        self.loop = loop
        self.conn = conn

    def start(self) -> None:
        """The connection is now this driver's (accepted, or switched to it)."""

    def received(self, data: bytes) -> None:
        """Plaintext bytes from the peer."""

    def peer_closed(self) -> None:
        """The peer shut its sending side (EOF)."""
        self.loop.close(self.conn)

    def flushed(self) -> None:
        """Output was written to the socket; `conn.out` may still hold more."""

    def ring_has_room(self) -> None:
        """The ring had no room (this driver was in `loop.waiting_for_ring`); now it has."""

    def after_messages(self) -> None:
        """Called once after a mailbox drain, when this driver put itself in
        `loop.after_drain` (HTTP/2 writes a drain's frames at once)."""

    def wants_input(self) -> bool:
        """Whether to read more from the socket now (backpressure)."""
        return True

    def timer_fired(self, kind: int) -> None:
        """The connection's timer of `kind` (mummy.core.connection) expired."""
        self.loop.close(self.conn)

    def message(self, msg: Message) -> None:
        """A message posted for this connection. It may also arrive after the
        connection closed or switched protocol: ignore what is not for you."""

    def closed(self) -> None:
        """The socket is closed; release what the protocol holds."""

    def server_closing(self) -> None:
        """close() began: start no new work; finish what is in flight."""

    def server_refusals_done(self) -> None:
        """close() has answered every task no worker started (HTTP/2 sends its GOAWAY)."""

    def last_word(self) -> bytes:
        """What to send before the connection is closed because this driver raised
        (a 500, a Close 1011...); b"" for nothing."""
        return b""
