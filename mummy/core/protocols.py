"""Which driver a new connection starts with, and which one follows TLS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mummy.core.driver import Driver
from mummy.core.h2_driver import H2Driver
from mummy.core.http1_driver import Http1Driver
from mummy.core.tls_driver import TlsHandshakeDriver

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.loop import EventLoop


def connection_driver(loop: EventLoop, conn: Connection) -> Driver:
    """A TLS handshake when the listener has a context, else HTTP/1.1 (which may
    switch to HTTP/2 or WebSocket)."""
    if loop.ssl_context is not None:
        return TlsHandshakeDriver(loop, conn, loop.ssl_context, _after_tls)
    return Http1Driver(loop, conn)


def _after_tls(loop: EventLoop, conn: Connection, alpn: str | None, plaintext: bytearray) -> Driver:
    if loop.config.http2 and alpn == "h2":
        return H2Driver(loop, conn, plaintext)
    return Http1Driver(loop, conn, plaintext)
