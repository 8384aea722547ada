"""WebSockets (RFC 6455): `WebSocket`, the events a handler receives, and messages.

>>> def on_websocket(ws: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None):
...     if event is mummy.Event.MESSAGE and message.kind is mummy.MessageKind.TEXT:
...         ws.send(message.data)  # echo

The frame protocol runs through wsproto on worker threads (and on whichever
thread calls `send`), so permessage-deflate never runs on the IO thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mummy.core.wsengine import Event, Message, MessageKind, WebSocketEngine

if TYPE_CHECKING:
    from mummy.request import Request

__all__ = ["Event", "Message", "MessageKind", "WebSocket"]


class WebSocket:
    """One WebSocket connection. `send` and `close` are safe from any thread,
    including threads outside handlers (broadcasting is normal use). Hashable by
    identity, so a set of WebSockets is the natural registry of clients.

    `request` is the upgrade request; `close_code` and `close_reason` tell how it
    ended (read them at CLOSE; 1006 when the peer vanished).
    """

    __slots__ = ("__weakref__", "_engine", "request")

    def __init__(self, request: Request, engine: WebSocketEngine) -> None:
        self.request = request
        self._engine = engine
        engine.handle = self

    @property
    def close_code(self) -> int | None:
        return self._engine.close_code

    @property
    def close_reason(self) -> str:
        return self._engine.close_reason

    def send(self, data: str | bytes, kind: MessageKind = MessageKind.TEXT) -> None:
        """Queue one message. Dropped (with a debug log) once the connection is
        closing. If the peer reads too slowly and more than
        `websocket_send_buffer_len` bytes are already waiting to be sent, the
        message is dropped and the connection closed with 1008. The bound is on
        that backlog, not on one message: a message of any size goes out when the
        reader is keeping up."""
        self._engine.send(data, kind)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection is dropped if the peer
        does not answer within `websocket_close_timeout`."""
        self._engine.close(code, reason)

    def __repr__(self) -> str:
        return f"<WebSocket {self.request.remote_address} {self.request.path}>"
