"""The WebSocket protocol (RFC 6455, RFC 7692) for one connection, over wsproto.

It runs on workers (the connection's events, one at a time) and on whichever
thread calls `send` or `close`, so permessage-deflate never runs on the IO
thread. `mummy.WebSocket` is the handle users see; this is the machinery under it.

Concurrency contract: `_lock` guards the wsproto state machine and `_unsent`:
wsproto is not thread-safe, and sends may come from any thread while a worker
feeds received bytes. `socket_backlog` is written by the IO thread and read by
senders without the lock (a stale value only delays or hastens a 1008 by one
message). `awaiting_pong` is set by the IO thread when it pings and cleared by
the worker that sees the Pong; a plain attribute store, atomic on both builds.
`opened`, `_fragments*`, `_close_dispatched` and `_pending_fail` belong to the
worker running this connection's events (one at a time).
"""

from __future__ import annotations

import base64
import binascii
import enum
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong
from wsproto.events import Message as WsprotoMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits
from wsproto.utilities import RemoteProtocolError

from mummy.core.fields import comma_tokens
from mummy.core.messages import WebSocketAbort, WebSocketClosing, WebSocketFrame
from mummy.errors import MummyError

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.messages import Message as LoopMessage

log = logging.getLogger("mummy")

Post = Callable[["LoopMessage"], None]


class Event(enum.Enum):
    """What happened on a WebSocket: OPEN first, CLOSE last and exactly once."""

    OPEN = "open"
    MESSAGE = "message"
    ERROR = "error"
    CLOSE = "close"


class MessageKind(enum.Enum):
    TEXT = "text"
    BINARY = "binary"
    PING = "ping"
    PONG = "pong"


@dataclass(slots=True, frozen=True)
class Message:
    """A whole message: `data` is str for TEXT, bytes otherwise."""

    kind: MessageKind
    data: str | bytes


WebSocketCompression = bool | str  # True, False or "context_takeover"


class UpgradeRequest(Protocol):
    """What the handshake reads of the request that asks to upgrade."""

    @property
    def method(self) -> str: ...
    @property
    def http_version(self) -> str: ...
    @property
    def uri(self) -> str: ...
    @property
    def headers(self) -> HeaderView: ...


class HeaderView(Protocol):
    def multi_items(self) -> list[tuple[str, str]]: ...


class MummyDeflate(PerMessageDeflate):
    """permessage-deflate (RFC 7692) as mummy runs it, server side.

    - Inbound, it stops inflating past `max_message_len`: deflate expands up to
      ~1000:1, so a 64 KiB frame could otherwise cost 64 MiB before any size
      check runs. Past the limit the connection fails with 1009.
    - Outbound, a message shorter than `min_size` goes out uncompressed, RSV1
      clear (§6.1 lets an endpoint send any message uncompressed; deflating a
      short message costs more CPU than the bytes it saves).
    - Outbound without server context takeover, a whole message is deflated by
      the sending thread's own compressor and ends with a full flush, not by a
      new zlib stream (~256 KB to set up and free) per message. Z_FULL_FLUSH
      resets the dictionary, so no message refers to one before it: what
      server_no_context_takeover promises the client (§7.1.1.1). The output of a
      full flush ends with the empty stored block 00 00 ff ff that §7.2.1 strips.
      Inbound stays one zlib stream per message: a window shared between
      connections would let one client's back-references read another's data.
    """

    def __init__(self, max_message_len: int, min_size: int, **options: bool) -> None:
        super().__init__(**options)
        self._limit = max_message_len
        self._inflated = 0
        self._min_size = max(1, min_size)  # an empty message is never deflated
        self._outbound_plain = False  # the message being sent goes out uncompressed

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        try:
            # max_length >= 1 here (0 would mean "no limit" to zlib).
            out = self._decompressor.decompress(bytes(data), self._limit + 1 - self._inflated)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._decompressor.unconsumed_tail or self._inflated > self._limit:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if fin:
            self._inflated = 0
        return super().frame_inbound_complete(proto, fin)

    def frame_outbound(
        self, proto: Any, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        if not self._compressible_opcode(opcode):
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            # The first frame decides for the whole message (mummy sends whole
            # messages, so a message shorter than min_size is one frame).
            self._outbound_plain = fin and len(data) < self._min_size
            if not self._outbound_plain and fin and self.server_no_context_takeover:
                bits = self.server_max_window_bits
                deflate = thread_compressor(bits)
                try:
                    out = deflate.compress(data) + deflate.flush(zlib.Z_FULL_FLUSH)
                except BaseException:
                    # Half a message may be left in it: never let it into another's.
                    drop_thread_compressor(bits)
                    raise
                return RsvBits(True, rsv.rsv2, rsv.rsv3), out[:-4]
        if self._outbound_plain:
            return rsv, data
        return super().frame_outbound(proto, opcode, rsv, data, fin)


_compressors = threading.local()


def _thread_compressors() -> dict[int, Any]:
    """This thread's compressors, by window bits."""
    by_bits: dict[int, Any] | None = getattr(_compressors, "by_bits", None)
    if by_bits is None:
        by_bits = _compressors.by_bits = {}
    return by_bits


def drop_thread_compressor(window_bits: int) -> None:
    _thread_compressors().pop(window_bits, None)


def thread_compressor(window_bits: int) -> Any:
    """This thread's raw-deflate compressor for `window_bits` (made on first use;
    used only between full flushes, so it carries nothing from one message on)."""
    by_bits = _thread_compressors()
    deflate = by_bits.get(window_bits)
    if deflate is None:
        deflate = by_bits[window_bits] = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits
        )
    return deflate


def open_websocket(
    request: UpgradeRequest,
    compression: WebSocketCompression,
    max_message_len: int,
    compress_min_size: int,
) -> tuple[bytes, WsprotoConnection]:
    """Check an upgrade request (RFC 6455 §4.2.1) and build the 101 response;
    returns it and the frame protocol of the open connection.
    Raises MummyError saying what is wrong with the handshake."""
    # Read from the pairs, not through the Headers index: the request lives as long
    # as the WebSocket (`ws.request`), and an index built here would too.
    pairs = request.headers.multi_items()
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name.lower(), []).append(value)
    problem = None
    if request.method != "GET" or request.http_version != "HTTP/1.1":
        problem = "a WebSocket handshake is a GET over HTTP/1.1"
    elif "upgrade" not in comma_tokens(fields.get("connection", [])):
        problem = "the Connection header must contain 'upgrade'"
    elif "websocket" not in comma_tokens(fields.get("upgrade", [])):
        problem = "the Upgrade header must be 'websocket'"
    elif fields.get("sec-websocket-version", [])[:1] != ["13"]:
        problem = "unsupported Sec-WebSocket-Version (only version 13 is)"
    else:
        key = fields.get("sec-websocket-key", [""])[0]
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                problem = "Sec-WebSocket-Key must be 16 bytes, base64-encoded"
        except binascii.Error:
            problem = "Sec-WebSocket-Key is not base64"
    if problem is not None:
        raise MummyError(f"Invalid request to upgrade to a WebSocket: {problem}")
    proto = WSConnection(ConnectionType.SERVER)
    raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs]
    try:
        proto.initiate_upgrade_connection(raw, request.uri)
    except RemoteProtocolError as exc:
        raise MummyError(f"Invalid request to upgrade to a WebSocket: {exc}") from None
    extensions: list[Extension] = []
    if compression:
        # Without context takeover no zlib state (~256 KB a stream) lives between
        # messages; RFC 7692 §7.1.1.1-2 lets a server ask for both directions.
        takeover = compression == "context_takeover"
        extensions.append(
            MummyDeflate(
                max_message_len,
                compress_min_size,
                client_no_context_takeover=not takeover,
                server_no_context_takeover=not takeover,
            )
        )
    wire = proto.send(AcceptConnection(extensions=extensions))
    # Past the handshake only the frame protocol is needed: keeping the
    # WSConnection would keep its h11 handshake state (~1.5 KB) per connection.
    assert proto.connection is not None
    return wire, proto.connection


class WebSocketEngine:
    """One WebSocket connection's protocol state; see the module's contract.
    `handle` is the user's `mummy.WebSocket` for it (set by whoever made both)."""

    def __init__(
        self,
        proto: WsprotoConnection,
        conn: Connection,
        post: Post,
        send_buffer_len: int,
    ) -> None:
        self.handle: object = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._proto = proto
        self._conn = conn
        self._post = post
        self._send_buffer_len = send_buffer_len
        self._lock = threading.Lock()
        self._unsent = 0  # bytes handed to the IO thread and not yet taken
        self.socket_backlog = 0
        self.awaiting_pong = False
        self._fragments: list[str | bytes] = []
        self._fragments_len = 0
        self._close_dispatched = False
        self.opened = False  # OPEN was dispatched (the server may refuse it at shutdown)
        self._pending_fail: tuple[int, str] | None = None

    def send(self, data: str | bytes, kind: MessageKind = MessageKind.TEXT) -> None:
        """Any thread; see `mummy.WebSocket.send`. The bound is on the bytes already
        waiting (a backlog the reader is not taking), not on this message."""
        if kind is MessageKind.TEXT:
            if not isinstance(data, str):
                raise MummyError("a TEXT message needs str data (or pass MessageKind.BINARY)")
            event: Any = WsprotoMessage(data=data)
        elif isinstance(data, str):
            raise MummyError(f"a {kind.name} message needs bytes data")
        elif kind is MessageKind.BINARY:
            event = WsprotoMessage(data=bytes(data))
        elif kind is MessageKind.PING:
            event = Ping(payload=bytes(data))
        else:
            event = Pong(payload=bytes(data))
        overflow = False
        with self._lock:
            if self._proto.state is not ConnectionState.OPEN:
                log.debug("dropped a message to a closing WebSocket")
                return
            if self._unsent + self.socket_backlog > self._send_buffer_len:
                overflow = True
            else:
                frame = self._proto.send(event)
                self._unsent += len(frame)
                self._post(WebSocketFrame(self._conn, frame, self))
        if overflow:
            log.warning(
                "WebSocket send buffer full (slow reader): closing %r with 1008", self.handle
            )
            self.close(1008, "send buffer full")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Any thread: start the closing handshake (once)."""
        with self._lock:
            if self._proto.state is not ConnectionState.OPEN:
                return
            frame = self._proto.send(CloseConnection(code=code, reason=reason))
            self.close_code, self.close_reason = code, reason
            self._post(WebSocketClosing(self._conn, frame))

    # --- for the IO thread and the worker that runs this connection's events -------

    def abort(self) -> None:
        """Server shutdown: drop the TCP connection now (the handler's CLOSE follows)."""
        self._post(WebSocketAbort(self._conn))

    def taken(self, size: int) -> None:
        """IO thread: `size` bytes of a send left the mailbox."""
        with self._lock:
            self._unsent -= size

    def receive(
        self, data: bytes, max_message_len: int
    ) -> tuple[list[tuple[Event, Message | None]], bool]:
        """Worker: feed received bytes; returns the events to dispatch, in order, and
        whether the TCP connection should be dropped once pending output is sent."""
        out: list[tuple[Event, Message | None]] = []
        with self._lock:
            proto = self._proto
            if proto.state is ConnectionState.CLOSED:
                return out, True
            proto.receive_data(data)
            for ev in proto.events():
                if isinstance(ev, CloseConnection):
                    return [*out, *self._on_close(ev)], True
                if isinstance(ev, WsprotoMessage):
                    self._fragments.append(ev.data)
                    # The limit is in bytes, for text too (UTF-8 on the wire).
                    size = len(ev.data.encode()) if isinstance(ev.data, str) else len(ev.data)
                    self._fragments_len += size
                    if self._fragments_len > max_message_len:
                        # RFC 6455 §7.4.1: 1009, message too big.
                        self._fragments.clear()
                        self._fail(1009, "message too big")
                        return [*out, (Event.ERROR, None)], True
                    if ev.message_finished:
                        parts, self._fragments, self._fragments_len = self._fragments, [], 0
                        if isinstance(ev.data, str):
                            message = Message(MessageKind.TEXT, "".join(cast(list[str], parts)))
                        else:
                            message = Message(
                                MessageKind.BINARY, b"".join(cast(list[bytes], parts))
                            )
                        out.append((Event.MESSAGE, message))
                elif isinstance(ev, Ping):
                    # RFC 6455 §5.5.2: answer with a Pong (not once our Close is out);
                    # the handler still sees the PING.
                    if proto.state is ConnectionState.OPEN:
                        self._post_frame(proto.send(ev.response()))
                    out.append((Event.MESSAGE, Message(MessageKind.PING, bytes(ev.payload))))
                elif isinstance(ev, Pong):
                    self.awaiting_pong = False
                    out.append((Event.MESSAGE, Message(MessageKind.PONG, bytes(ev.payload))))
        return out, False

    def _on_close(self, ev: CloseConnection) -> list[tuple[Event, Message | None]]:
        state = self._proto.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The peer started the handshake: echo its code (RFC 6455 §5.5.1).
            self._post_frame(self._proto.send(ev.response()))
            self.close_code, self.close_reason = ev.code, ev.reason or ""
            return []
        if state is ConnectionState.CLOSED:
            return []  # the peer answered our Close; close_code is ours
        # wsproto found a protocol error (1002, 1007...): fail the connection.
        self._fail(ev.code, ev.reason or "")
        return [(Event.ERROR, None)]

    def _fail(self, code: int, reason: str) -> None:
        # The Close goes out in fail_pending(), after the handler has seen the
        # events that came before the failure (and could still answer them).
        self._pending_fail = (code, reason)
        self.close_code, self.close_reason = code, reason

    def fail_pending(self) -> None:
        """Worker, after dispatching: send the Close of a failure found in receive()."""
        pending, self._pending_fail = self._pending_fail, None
        if pending is None:
            return
        with self._lock:
            if self._proto.state is ConnectionState.OPEN:
                code, reason = pending
                self._post_frame(self._proto.send(CloseConnection(code=code, reason=reason)))

    def _post_frame(self, frame: bytes) -> None:
        self._unsent += len(frame)
        self._post(WebSocketFrame(self._conn, frame, self))

    def gone(self) -> list[tuple[Event, Message | None]]:
        """Worker: the TCP connection is closed; what is left to dispatch."""
        with self._lock:
            clean = self._proto.state is ConnectionState.CLOSED or self.close_code is not None
            if self.close_code is None:
                self.close_code = 1006  # RFC 6455 §7.1.5: closed without a Close frame
        return [] if clean else [(Event.ERROR, None)]

    def claim_close(self) -> bool:
        """Worker: True the first time only; CLOSE is dispatched exactly once."""
        if self._close_dispatched:
            return False
        self._close_dispatched = True
        return True
