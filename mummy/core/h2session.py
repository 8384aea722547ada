"""HTTP/2 (RFC 9113) for one connection, over the `h2` state machine (optional extra).

Bytes in, complete stream requests out, and responses framed back with flow
control. It runs on workers, under the lock of mummy.core.h2_driver's
SharedSession (one thread at a time, any thread). Each stream's request goes to
the worker pool like an HTTP/1.1 request, so one connection's streams run in
parallel and responses go out in whatever order they finish.

Known attacks stay cheap: rapid reset (CVE-2023-44487), PING and SETTINGS
floods are counted over a sliding window and answered with GOAWAY
(ENHANCE_YOUR_CALM); header lists are bounded by max_headers_len through
SETTINGS_MAX_HEADER_LIST_SIZE and the HPACK decoder; h2 itself refuses more
than 64 CONTINUATION frames in a row (CVE-2024-27316).
"""

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import hpack.hpack
import hpack.table
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import FlowControlError, ProtocolError, StreamClosedError
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from mummy.core.http1 import ParsedRequest, RequestHead


class _DebugOff:
    """A stand-in for hpack's module loggers whose `debug` does nothing: hpack calls
    it ~20 times a request even with the logger off, ~9% of the session's work by
    cProfile (bench/micro/h2_session.py's loop: 135 -> 114 us a request on 3.13t
    without them). Everything else goes to the real logger."""

    def __init__(self, real: logging.Logger) -> None:
        self._real = real

    def debug(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _quiet_hpack() -> None:
    # Decided once, at import (the first HTTP/2 connection): a logger already at
    # DEBUG keeps its debug output.
    for module in (hpack.hpack, hpack.table):
        real = getattr(module, "log", None)
        if isinstance(real, logging.Logger) and not real.isEnabledFor(logging.DEBUG):
            module.log = _DebugOff(real)  # type: ignore[attr-defined]


_quiet_hpack()

FLOOD_WINDOW_SECONDS = 10.0
MAX_RESETS_PER_WINDOW = 200
MAX_PINGS_PER_WINDOW = 100
MAX_SETTINGS_PER_WINDOW = 100


class StreamOwner(Protocol):
    """A streamed response or EventStream on a stream: told how much of its data
    waits for the flow-control window, and that the stream is gone (reset)."""

    h2_pending: int

    def stream_gone(self) -> None: ...


@dataclass(slots=True)
class _Stream:
    headers: list[tuple[str, str]]
    method: str = ""
    path: str = ""
    body: bytearray = field(default_factory=bytearray)
    too_large: bool = False
    answered: bool = False  # response headers sent; the body may still be flowing
    # Response data waiting for the flow-control window, and its length.
    pending: deque[memoryview] = field(default_factory=deque)
    pending_len: int = 0
    end_when_sent: bool = False  # END_STREAM after the pending data
    owner: StreamOwner | None = None  # a streamed body's producer


class FloodCounter:
    """Events per sliding window; `hit()` is True once the limit is passed."""

    __slots__ = ("_limit", "_times")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._times: deque[float] = deque()

    def hit(self, now: float) -> bool:
        times = self._times
        times.append(now)
        while times and times[0] < now - FLOOD_WINDOW_SECONDS:
            times.popleft()
        return len(times) > self._limit


class H2Session:
    """One HTTP/2 connection; one thread at a time (SharedSession's lock)."""

    def __init__(self, *, max_headers_len: int, max_body_len: int, max_streams: int) -> None:
        # Outbound fields are validated (and lower-cased) by mummy.core.response.h2_fields;
        # h2 doing it again costs more than the rest of a small response.
        config = H2Configuration(
            client_side=False,
            header_encoding="latin-1",
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = H2Connection(config)
        self._settings: dict[SettingCodes | int, int] = {
            SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: max_headers_len,
            SettingCodes.ENABLE_PUSH: 0,
        }
        # Bound HPACK output at once, not only after the client acknowledges SETTINGS.
        self.conn.decoder.max_header_list_size = max_headers_len
        self._max_body_len = max_body_len
        self._streams: dict[int, _Stream] = {}
        # Streams whose request went to the workers and is not answered yet, and the
        # highest stream answered so far: together, what a GOAWAY must not refuse.
        self._dispatched: set[int] = set()
        self._last_answered = 0
        self._refused: list[int] = []  # reset with REFUSED_STREAM once the GOAWAY is out
        self._graceful_goaway = b""  # our graceful GOAWAY, written before h2's next output
        self._resets = FloodCounter(MAX_RESETS_PER_WINDOW)
        self._pings = FloodCounter(MAX_PINGS_PER_WINDOW)
        self._settings_changes = FloodCounter(MAX_SETTINGS_PER_WINDOW)
        self.closed = False  # a fatal GOAWAY sent or received: close once output is written
        self.draining = False  # GOAWAY(NO_ERROR) sent: finish the streams in flight, then close

    def start(self) -> None:
        self.conn.initiate_connection()
        self.conn.update_settings(self._settings)

    def start_upgrade(self, http2_settings: str) -> None:
        """h2c via `Upgrade: h2c` (RFC 7540 §3.2); the upgrade request is stream 1."""
        self.conn.initiate_upgrade_connection(http2_settings.encode("latin-1"))
        self.conn.update_settings(self._settings)

    def data_to_send(self) -> bytes:
        out = self.conn.data_to_send()
        if self._graceful_goaway:
            out, self._graceful_goaway = self._graceful_goaway + out, b""
        return out

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def upgrade_request(self, head: RequestHead, body: bytes) -> ParsedRequest:
        """The HTTP/1.1 request that asked for h2c, as stream 1."""
        self._streams[1] = _Stream(headers=head.headers, method=head.method, path=head.target)
        self._dispatched.add(1)
        head.version = "HTTP/2"
        return ParsedRequest(head, body, stream_id=1)

    def receive(self, data: bytes) -> list[ParsedRequest]:
        """Feed received bytes; returns the requests whose streams are complete."""
        try:
            events = self.conn.receive_data(data)
        except ProtocolError as exc:
            self._goaway(ErrorCodes.PROTOCOL_ERROR, str(exc))
            return []
        now = time.monotonic()
        ready: list[ParsedRequest] = []
        for event in events:
            if isinstance(event, RequestReceived):
                self._on_headers(event)  # h2 reports END_STREAM as its own event, below
            elif isinstance(event, DataReceived):
                self._on_data(event)
            elif isinstance(event, StreamEnded):
                self._complete(event.stream_id, ready)
            elif isinstance(event, StreamReset):
                self._drop(event.stream_id)
                self._dispatched.discard(event.stream_id)
                if event.remote_reset and self._resets.hit(now):
                    self._goaway(ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
            elif isinstance(event, WindowUpdated):
                self._flush()
            elif isinstance(event, PingReceived):
                if self._pings.hit(now):
                    self._goaway(ErrorCodes.ENHANCE_YOUR_CALM, "too many PINGs")
            elif isinstance(event, RemoteSettingsChanged):
                if self._settings_changes.hit(now):
                    self._goaway(ErrorCodes.ENHANCE_YOUR_CALM, "too many SETTINGS")
                self._flush()
            elif isinstance(event, ConnectionTerminated):
                self.closed = True
            elif isinstance(event, TrailersReceived):
                pass  # trailers are ignored (the body is complete without them)
            if self.closed:
                return []
        return ready

    def _on_headers(self, event: RequestReceived) -> None:
        pseudo: dict[str, str] = {}
        headers: list[tuple[str, str]] = []
        for name, value in event.headers:
            key = name.decode("latin-1") if isinstance(name, bytes) else name
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if key.startswith(":"):
                pseudo[key] = text
            else:
                headers.append((key, text))
        if ":authority" in pseudo and not any(k == "host" for k, _ in headers):
            headers.insert(0, ("host", pseudo[":authority"]))
        method = pseudo.get(":method", "")
        path = pseudo.get(":path", "")
        if not method or not path:
            self._reset(event.stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        self._streams[event.stream_id] = _Stream(headers=headers, method=method, path=path)

    def _on_data(self, event: DataReceived) -> None:
        stream = self._streams.get(event.stream_id)
        # Give the window back at once: bodies are bounded by max_body_len instead.
        if event.flow_controlled_length:
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        if stream is None or stream.too_large:
            return
        stream.body += event.data
        if len(stream.body) > self._max_body_len:
            stream.too_large = True
            stream.body = bytearray()
            self.respond(
                event.stream_id, 413, [("content-type", "text/plain")], b"body too large\n"
            )
            self._reset(event.stream_id, ErrorCodes.CANCEL)

    def _complete(self, stream_id: int, ready: list[ParsedRequest]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.too_large:
            return
        content_encoding = [v for k, v in stream.headers if k == "content-encoding"]
        head = RequestHead(
            stream.method,
            stream.path,
            "HTTP/2",
            stream.headers,
            True,
            False,
            len(stream.body),
            False,
            ", ".join(content_encoding) if content_encoding else None,
        )
        ready.append(ParsedRequest(head, bytes(stream.body), stream_id=stream_id))
        self._dispatched.add(stream_id)
        stream.body = bytearray()

    def respond(
        self, stream_id: int, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """Frame a response (fields checked by mummy.core.response.h2_fields); the
        body goes out as the flow-control windows allow."""
        self._dispatched.discard(stream_id)
        stream = self._streams.get(stream_id)
        if stream is None or self.closed:
            return  # reset by the client meanwhile, or the connection failed
        self._last_answered = max(self._last_answered, stream_id)
        stream.answered = True
        fields = [(":status", str(status))]
        fields += headers
        try:
            self.conn.send_headers(stream_id, fields, end_stream=not body)
        except (ProtocolError, StreamClosedError):
            self._drop(stream_id)
            return
        if body:
            stream.pending.append(memoryview(body))
            stream.pending_len = len(body)
            stream.end_when_sent = True
            self._flush()
        else:
            self._drop(stream_id)

    def stream_send(
        self,
        stream_id: int,
        owner: StreamOwner,
        data: bytes,
        *,
        status: int | None,
        fields: list[tuple[str, str]] | None,
        end: bool,
        reset: bool,
    ) -> None:
        """A streamed body's part: its head first (`status`), then data as the
        windows allow, END_STREAM after the data when `end`; `reset` cuts the
        stream (RST_STREAM INTERNAL_ERROR: the body cannot be completed)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.closed:
            owner.stream_gone()  # reset by the client meanwhile, or the connection failed
            return
        if reset:
            self._drop(stream_id)
            self._reset(stream_id, ErrorCodes.INTERNAL_ERROR)
            return
        if status is not None:
            self._dispatched.discard(stream_id)
            self._last_answered = max(self._last_answered, stream_id)
            stream.answered = True
            stream.owner = owner
            head = [(":status", str(status)), *(fields or [])]
            try:
                self.conn.send_headers(stream_id, head, end_stream=end and not data)
            except (ProtocolError, StreamClosedError):
                self._drop(stream_id)
                return
            if end and not data:
                self._drop(stream_id)
                return
        if data:
            stream.pending.append(memoryview(data))
            stream.pending_len += len(data)
        stream.end_when_sent = end
        self._flush()

    def _flush(self) -> None:
        conn = self.conn
        for stream_id, stream in list(self._streams.items()):
            if not stream.answered:
                continue
            pending = stream.pending
            ended = False
            try:
                while pending:
                    data = pending[0]
                    window = conn.local_flow_control_window(stream_id)
                    size = min(window, conn.max_outbound_frame_size, len(data))
                    if size <= 0:
                        break  # wait for WINDOW_UPDATE
                    whole = size == len(data)
                    ended = whole and len(pending) == 1 and stream.end_when_sent
                    conn.send_data(stream_id, data[:size].tobytes(), end_stream=ended)
                    stream.pending_len -= size
                    if whole:
                        pending.popleft()
                    else:
                        pending[0] = data[size:]
                if not pending and stream.end_when_sent and not ended:
                    conn.end_stream(stream_id)  # a stream that ends after its last chunk
                    ended = True
            except (FlowControlError, ProtocolError, StreamClosedError):
                ended = True
            if stream.owner is not None:
                stream.owner.h2_pending = stream.pending_len
            if ended:
                self._drop(stream_id)

    def _drop(self, stream_id: int) -> None:
        """Forget a stream (answered, reset, failed); its producer learns it is gone."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None and stream.owner is not None:
            stream.owner.stream_gone()

    def _reset(self, stream_id: int, code: ErrorCodes) -> None:
        try:
            self.conn.reset_stream(stream_id, code)
        except (ProtocolError, StreamClosedError):
            pass

    def _goaway(self, code: ErrorCodes, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.conn.close_connection(code, additional_data=reason.encode()[:200])

    def fail(self) -> bytes:
        """This connection is dropped after an internal error: a GOAWAY saying so."""
        self._goaway(ErrorCodes.INTERNAL_ERROR, "internal error")
        return self.data_to_send()

    def refuse(self, stream_id: int) -> None:
        """Server shutdown: no worker will run this stream; it is reset with
        REFUSED_STREAM (RFC 9113 §8.7: the client may retry it) after the GOAWAY."""
        self._dispatched.discard(stream_id)
        self._drop(stream_id)
        if self.draining:
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
        else:
            self._refused.append(stream_id)

    def close(self) -> None:
        """Server shutdown: GOAWAY (NO_ERROR) naming the last stream that was or is
        being processed, then REFUSED_STREAM for every other open stream; the
        streams with workers are still answered (RFC 9113 §6.8)."""
        if self.closed or self.draining:
            return
        self.draining = True
        last = max(self._last_answered, max(self._dispatched, default=0))
        # Framed here, not with h2's close_connection(): h2 sends nothing more once it
        # has sent a GOAWAY, and the streams in flight must still be answered.
        frame = GoAwayFrame(0, last_stream_id=last, error_code=ErrorCodes.NO_ERROR)
        self._graceful_goaway = self.conn.data_to_send() + frame.serialize()
        unstarted = [
            sid
            for sid, stream in self._streams.items()
            if not stream.answered and sid not in self._dispatched
        ]
        for stream_id in [*self._refused, *unstarted]:
            self._drop(stream_id)
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
        self._refused.clear()
