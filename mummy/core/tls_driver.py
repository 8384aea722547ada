"""TLS, a layer under any protocol: the handshake runs on workers, one step per
batch of received bytes (a storm of handshakes does not stall the IO thread);
once it is done the connection's records go through `conn.tls` in the loop, and
the driver of the protocol ALPN chose takes over.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from mummy.core.connection import HEAD
from mummy.core.driver import Driver
from mummy.core.messages import Message, TlsStep, TlsTask
from mummy.core.tls import TLSState

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.loop import EventLoop

# Makes the driver for the protocol ALPN chose, with the plaintext received so far.
NextDriver = Callable[["EventLoop", "Connection", str | None, bytearray], Driver]


class TlsHandshakeDriver(Driver):
    __slots__ = ("_next", "busy", "inbuf", "tls")
    protocol = "tls_handshake"

    def __init__(
        self, loop: EventLoop, conn: Connection, context: ssl.SSLContext, next_driver: NextDriver
    ) -> None:
        super().__init__(loop, conn)
        self.tls = TLSState(context)
        self.inbuf = bytearray()
        self.busy = False  # a handshake step is with a worker
        self._next = next_driver

    def start(self) -> None:
        # The handshake counts against header_timeout (a silent client is closed).
        self.loop.arm(self.conn.timer, self.loop.config.header_timeout, HEAD)

    def received(self, data: bytes) -> None:
        self.inbuf += data
        if not self.busy:
            self._step()

    def wants_input(self) -> bool:
        return len(self.inbuf) <= self.loop.config.max_buffered

    def server_closing(self) -> None:
        if not self.busy:
            self.loop.close(self.conn)

    def message(self, msg: Message) -> None:
        if not isinstance(msg, TlsStep):
            return
        self.busy = False
        conn, loop = self.conn, self.loop
        if conn.closed:
            return
        if msg.finished is None:
            loop.close(conn)  # the handshake failed (logged by the worker), or shutdown
            return
        if msg.out:
            loop.send_raw(conn, msg.out)
            if conn.closed:
                return
        if not msg.finished:
            if self.inbuf:
                self._step()
            else:
                loop.update_events(conn)
            return
        # Records that arrived during this last step are still ciphertext.
        pending = bytes(self.inbuf)
        self.inbuf.clear()
        conn.tls = self.tls
        try:
            plaintext = bytearray(self.tls.decrypt(pending))
        except ssl.SSLError:
            loop.close(conn)
            return
        loop.switch(conn, self._next(loop, conn, self.tls.alpn_protocol, plaintext))

    def _step(self) -> None:
        data = bytes(self.inbuf)
        self.inbuf.clear()
        self.busy = True
        self.loop.ring.put(TlsTask(self.conn, self.tls, data), force=True)
        self.loop.update_events(self.conn)
