"""`Request`: what a handler receives, and `respond()`, how it answers."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mummy.core.compression import NotAcceptable
from mummy.core.config import ServerConfig
from mummy.core.files import FileChunks, FileSegment, content_type, strong_etag
from mummy.core.files import choose as choose_file
from mummy.core.files import plan as plan_file
from mummy.core.forwarded import forwarded_client
from mummy.core.messages import (
    FileStart,
    H2Response,
    H2StreamData,
    Http1Response,
    StreamStart,
    Upgrade,
)
from mummy.core.metrics import WorkerCounts
from mummy.core.response import CHUNKED, StreamHead, encode_response, stream_head
from mummy.core.sse import SseEngine
from mummy.core.streams import ResponseStream
from mummy.core.wsengine import WebSocketEngine, open_websocket
from mummy.errors import MummyError
from mummy.headers import Headers, HeadersInput, QueryParams
from mummy.sse import EventStream
from mummy.websocket import WebSocket

if TYPE_CHECKING:
    from mummy.core.connection import Connection
    from mummy.core.http1 import ParsedRequest

Body = bytes | bytearray | memoryview | str

access_log = logging.getLogger("mummy.access")
log = logging.getLogger("mummy")
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
_FILE_FIELDS = frozenset(("content-type", "content-encoding"))  # they describe the file

_SSE_FIELDS = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
)
_NOT_ACCEPTABLE = {"Content-Type": "text/plain; charset=utf-8"}


@dataclass(slots=True, frozen=True)
class ResponseContext:
    """What `respond()` needs from its server: one per server, shared, read-only."""

    closing: Callable[[], bool]  # close() began: answer with Connection: close
    config: ServerConfig


def _header_pairs(headers: HeadersInput) -> list[tuple[str, str]]:
    if headers is None:
        return []
    # dict first (Headers is no dict): an isinstance test against Headers, an ABC,
    # reads abc's caches, which every worker shares (and locks, on 3.13t).
    if isinstance(headers, dict):
        # One copy, then a private iteration: iterating a dict shared by every worker
        # (a module-level headers constant) locks it once per item on 3.13t.
        return [(str(k), str(v)) for k, v in headers.copy().items()]
    if isinstance(headers, Headers):
        return headers.multi_items()
    return Headers(headers).multi_items()


class Request:
    """A complete, in-memory HTTP request, handed to a handler on a worker thread.

    >>> def handler(request: mummy.Request) -> None:
    ...     request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")

    A Request is valid while its handler runs and, after `respond_stream`,
    `respond_sse` or `upgrade_to_websocket`, for as long as that stream or
    WebSocket is open (`EventStream.request`, `WebSocket.request`). Exactly one of
    `respond`, `respond_stream`, `respond_sse`, `upgrade_to_websocket` answers it,
    from any thread; a second raises MummyError.
    """

    __slots__ = (
        "_conn",
        "_counts",
        "_ctx",
        "_keep_alive",
        "_received_at",
        "_respond_lock",
        "_started",
        "_stream_id",
        "body",
        "headers",
        "http_version",
        "method",
        "path",
        "path_params",
        "query_params",
        "remote_address",
        "scheme",
        "uri",
    )

    http_version: str
    """'HTTP/1.0', 'HTTP/1.1' or 'HTTP/2'."""
    method: str
    uri: str
    """The raw request-target, as sent."""
    path: str
    """The percent-decoded path of `uri`."""
    query_params: QueryParams
    path_params: dict[str, str]
    headers: Headers
    body: bytes
    remote_address: str
    """The client's IP address: the peer's, or what a trusted proxy says
    (`forwarded_allow_ips`)."""
    scheme: str
    """'https' over TLS, else 'http'; or what a trusted proxy says."""

    def __init__(
        self,
        ctx: ResponseContext,
        conn: Connection,
        parsed: ParsedRequest,
        path: str,
        query: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        head = parsed.head
        self.http_version = head.version
        self.method = head.method
        self.uri = head.target
        self.path = path
        self.query_params = QueryParams.from_pairs(query)
        self.path_params = {}
        self.headers = Headers.from_pairs(head.headers)
        self.body = body
        remote, scheme = conn.remote_address, "http" if conn.tls is None else "https"
        trusted = ctx.config.trusted_proxies
        if trusted is not None and trusted.trusts(remote):
            address, told = forwarded_client(trusted, self.headers.get_all)
            remote, scheme = address or remote, told or scheme
        self.remote_address = remote
        self.scheme = scheme
        self._keep_alive = head.keep_alive
        self._conn = conn
        self._ctx = ctx
        self._started = time.monotonic()
        self._stream_id = parsed.stream_id
        self._received_at = parsed.received_at
        # The worker's counts (metrics_port), set by the runtime that made this request.
        self._counts: WorkerCounts | None = None
        # A non-blocking acquire is an atomic test-and-set on both builds.
        self._respond_lock = threading.Lock()

    @property
    def responded(self) -> bool:
        """True once `respond()` has been called."""
        return self._respond_lock.locked()

    def respond(
        self,
        status: int,
        headers: HeadersInput = None,
        body: Body = b"",
        *,
        compress: bool = True,
    ) -> None:
        """Send the response: `status`, `headers` (a dict, a list of pairs or
        `Headers`) and `body` (bytes, or str sent as UTF-8). Content-Length,
        Date and Connection are added for you, and the body is compressed when
        the client accepts it (`compress=False` turns that off for this
        response). Raises MummyError on a second call."""
        if isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, (bytearray, memoryview)):
            data = bytes(body)
        else:
            raise MummyError(f"body must be bytes or str, not {type(body).__name__}")
        ctx = self._ctx
        item, status, size = encode_response(
            self._conn,
            self._stream_id,
            self.method,
            self.http_version,
            self._keep_alive,
            self.headers,
            status,
            _header_pairs(headers),
            data,
            compress_body=compress,
            config=ctx.config,
            server_closing=ctx.closing(),
        )
        if not self._respond_lock.acquire(blocking=False):
            raise MummyError(
                f"{self.method} {self.uri} has already been responded to; respond exactly once"
            )
        self._answered(status, size)
        self._conn.post(item)

    def respond_stream(
        self,
        status: int,
        headers: HeadersInput = None,
        body: Iterable[bytes | str] = (),
        *,
        compress: bool = True,
    ) -> None:
        """Send a response whose body is pulled from `body`, an iterable of bytes or
        str chunks (a generator, usually), each written as soon as it is produced.

        >>> def lines():
        ...     for i in range(3):
        ...         yield f"line {i}\\n"
        >>> request.respond_stream(200, {"Content-Type": "text/plain"}, lines())

        Returns at once: the iterator runs on workers, one chunk after another,
        only while the client keeps up (`stream_buffer_len`), inside a copy of the
        caller's contextvars (thread-locals do not follow it). HTTP/1.1 is chunked
        unless `headers` set Content-Length (then the body must have exactly that
        length, or the connection is closed); compressed as `respond` does, flushed
        per chunk, unless `compress=False` or Content-Length is set. For HEAD,
        204 and 304 the iterator is closed without being iterated. If it raises
        before its first chunk a 500 is sent, after it the response is cut (the
        connection closed; HTTP/2: the stream reset). The client leaving, or the
        server closing, calls the iterator's close()."""
        if isinstance(body, (str, bytes, bytearray, memoryview)):
            raise MummyError(
                "respond_stream() takes an iterable of chunks (a generator, a list); "
                "for one bytes or str body use respond()"
            )
        try:
            iterator = iter(body)
        except TypeError:
            raise MummyError(
                f"respond_stream() needs an iterable body, not {type(body).__name__}"
            ) from None
        context = contextvars.copy_context()
        try:
            head = self._stream_head(status, _header_pairs(headers), compress)
        except NotAcceptable:
            # RFC 9110 §15.5.7: the client refuses identity and all we offer.
            close = getattr(body, "close", None)
            if close is not None:
                context.run(close)
            self.respond(406, _NOT_ACCEPTABLE, "406 Not Acceptable: no acceptable content coding\n")
            return
        self._claim()
        conn, config = self._conn, self._ctx.config
        self._answered(head.status, 0)
        stream = ResponseStream(
            conn, self._stream_id, head, body, iterator, context, config, conn.streams
        )
        if head.no_body:
            # HEAD, 204, 304: the head is the whole response; the body is never pulled.
            stream.close_iterator()
            conn.post(self._head_only(head))
            return
        conn.streams.add(stream)
        conn.post(StreamStart(conn, stream, b""))

    def respond_sse(self, headers: HeadersInput = None) -> EventStream:
        """Answer with a Server-Sent Events stream and return it; send events from
        any thread, for as long as the client stays.

        >>> events = request.respond_sse()
        >>> events.send("hello", event="greeting", id="1")

        `200` with `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
        `X-Accel-Buffering: no` (so nginx does not buffer it), never compressed;
        `headers` add to those (or replace them). The handler returns at once: no
        worker is held while the stream is open."""
        pairs = _header_pairs(headers)
        given = {name.lower() for name, _ in pairs}
        pairs = [pair for pair in _SSE_FIELDS if pair[0].lower() not in given] + pairs
        head = self._stream_head(200, pairs, False)
        self._claim()
        conn, config = self._conn, self._ctx.config
        engine = SseEngine(
            conn,
            self._stream_id,
            chunked=head.framing == CHUNKED,
            keep_alive=head.keep_alive,
            send_buffer_len=config.sse_send_buffer_len,
            registry=conn.streams,
        )
        events = EventStream(self, engine)
        self._answered(200, 0)
        if head.no_body:
            engine.closed = True  # HEAD: the head only, and a stream that is over
            conn.post(self._head_only(head))
            return events
        conn.streams.add(engine)
        if self._stream_id:
            # The head goes into the session first, so events sent from now on follow it.
            conn.post(H2StreamData(conn, self._stream_id, engine, status=200, fields=head.fields))
        conn.post(StreamStart(conn, engine, head.wire))
        if self._ctx.closing():
            engine.close()  # close() ended the others already: this one ends at once too
        return events

    def respond_file(self, path: str | os.PathLike[str], headers: HeadersInput = None) -> None:
        """Send the file at `path`: 404 when it is missing or not a regular file;
        `Content-Type` from its name, `ETag`, `Last-Modified`, `Accept-Ranges`; a
        304 for a matching `If-None-Match`/`If-Modified-Since`; one `Range` (with
        `If-Range`) as a 206, an unsatisfiable one as a 416. A precompressed sibling
        (`path.zst`, `path.gz`) is sent instead to a client that accepts it.

        >>> request.respond_file("public/report.pdf", {"Cache-Control": "max-age=60"})

        The bytes are sent from the open file (`os.sendfile` on plaintext HTTP/1.1),
        never held in memory whole; `headers` add to or replace the fields above."""
        self._send_file(os.fspath(path), headers)

    def _send_file(
        self,
        path: str,
        headers: HeadersInput = None,
        allowed: Callable[[str], bool] | None = None,
    ) -> None:
        """`respond_file`, with `allowed` vetting the real path of each precompressed
        sibling (for mummy.StaticFiles, which keeps them inside its root)."""
        chosen = choose_file(path, self.headers.get("accept-encoding"), allowed)
        if chosen is None:
            log.debug("%s %s: no regular file at %r, 404", self.method, self.uri, path)
            self.respond(404, _TEXT, "Not Found\n")
            return
        segment = FileSegment(chosen.fd, 0, 0)  # owns the fd: closed once, wherever
        try:
            given = _header_pairs(headers)
            names = {name.lower() for name, _ in given}
            pairs = [("Content-Type", content_type(path))]
            if chosen.coding is not None:
                pairs.append(("Content-Encoding", chosen.coding))
            if chosen.vary:
                pairs.append(("Vary", "Accept-Encoding"))
            etag = strong_etag(chosen.st, f"-{chosen.coding}" if chosen.coding else "")
            decided = plan_file(self.headers, self.method, chosen.st, etag)
            pairs = [p for p in pairs + decided.fields if p[0].lower() not in names] + given
            if decided.status == 416:
                segment.close()
                # The body is ours, not the file's: its own type, no content coding.
                kept = [p for p in pairs if p[0].lower() not in _FILE_FIELDS]
                self.respond(416, kept + list(_TEXT.items()), "416 Range Not Satisfiable\n")
                return
            if decided.status == 304:
                # RFC 9110 §15.4.5: the validators, no Content-Length (it would have to
                # be the 200's, which HEAD gives).
                segment.close()
                self.respond(304, pairs, b"", compress=False)
                return
            pairs.append(("Content-Length", str(decided.length)))
            if self.method == "HEAD" or not decided.length:
                segment.close()
                self.respond(decided.status, pairs, b"", compress=False)
                return
        except BaseException:
            segment.close()
            raise
        segment.offset, segment.left = decided.offset, decided.length
        self._send_fd(decided.status, pairs, segment)

    def _send_fd(self, status: int, pairs: list[tuple[str, str]], segment: FileSegment) -> None:
        """Answer with `segment` of an open file, its Content-Length in `pairs` (for
        respond_file and the WSGI adapter's file_wrapper). The segment's fd is ours
        from here: closed once sent, or when the client leaves. Plaintext HTTP/1.1
        sends it with os.sendfile from the IO thread; TLS and HTTP/2 read it in
        chunks on workers (a streamed response)."""
        conn = self._conn
        try:
            if self._stream_id or conn.tls is not None:
                # conn.tls is set before any request of the connection exists.
                self.respond_stream(status, pairs, FileChunks(segment), compress=False)
                return
            head = self._stream_head(status, pairs, False)
            self._claim()
        except BaseException:
            segment.close()
            raise
        segment.keep_alive = head.keep_alive
        self._answered(status, segment.left)
        conn.post(FileStart(conn, head.wire, segment))

    def _stream_head(self, status: int, pairs: list[tuple[str, str]], compress: bool) -> StreamHead:
        ctx = self._ctx
        return stream_head(
            self._stream_id,
            self.method,
            self.http_version,
            self._keep_alive,
            self.headers,
            status,
            pairs,
            compress_body=compress,
            config=ctx.config,
            server_closing=ctx.closing(),
        )

    def _head_only(self, head: StreamHead) -> Http1Response | H2Response:
        if self._stream_id:
            return H2Response(self._conn, self._stream_id, head.status, head.fields, b"")
        return Http1Response(self._conn, head.wire, head.keep_alive)

    def _claim(self) -> None:
        if not self._respond_lock.acquire(blocking=False):
            raise MummyError(
                f"{self.method} {self.uri} has already been responded to; respond exactly once"
            )

    def upgrade_to_websocket(self) -> WebSocket:
        """Answer 101 and turn this connection into a WebSocket (RFC 6455 §4.2).

        Returns the WebSocket at once; `send` may be called right away (frames go
        out after the 101). A request that is not a valid WebSocket handshake is
        answered 400 (426 for an unsupported version) and MummyError is raised."""
        ctx = self._ctx
        if self._stream_id:
            # RFC 8441 (WebSockets over HTTP/2) is not supported.
            self.respond(501, None, "WebSockets over HTTP/2 are not supported; use HTTP/1.1\n")
            raise MummyError("WebSockets over HTTP/2 are not supported; use HTTP/1.1")
        try:
            config = ctx.config
            wire, proto = open_websocket(
                self,
                config.websocket_compression,
                config.max_message_len,
                config.websocket_compress_min_size,
            )
        except MummyError as exc:
            status = 426 if "version" in str(exc).lower() else 400
            headers = {"Sec-WebSocket-Version": "13"} if status == 426 else None
            self.respond(status, headers, f"{exc}\n")
            raise
        if not self._respond_lock.acquire(blocking=False):
            raise MummyError(f"{self.method} {self.uri} has already been responded to")
        conn = self._conn
        engine = WebSocketEngine(proto, conn, conn.post, ctx.config.websocket_send_buffer_len)
        ws = WebSocket(self, engine)
        self._answered(101, 0)
        conn.post(Upgrade(conn, wire, engine))
        return ws

    def redirect(self, location: str, status: int = 303) -> None:
        """Respond with a redirect to `location` (303 See Other by default;
        301, 302, 307 and 308 are the other choices)."""
        if status not in (301, 302, 303, 307, 308):
            raise MummyError(f"redirect status must be 301, 302, 303, 307 or 308, not {status}")
        self.respond(status, {"Location": location})

    def _answered(self, status: int, size: int) -> None:
        """The response is about to be posted: counted (before the post, so that on
        the GIL build the IO thread it wakes does not wait for the count), and a line
        for the access log."""
        counts = self._counts
        if counts is not None:
            seconds = time.monotonic() - self._received_at
            counts.request(self.method, bool(self._stream_id), status, seconds)
        if self._ctx.config.access_log:
            self._log_access(status, size)

    def _log_access(self, status: int, size: int) -> None:
        # nginx's "combined" format, with the handler's duration in seconds appended.
        headers = self.headers
        when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        access_log.info(
            '%s - - [%s] "%s %s %s" %d %d "%s" "%s" %.6f',
            self.remote_address or "-",
            when,
            self.method,
            self.uri,
            self.http_version,
            status,
            size,
            headers.get("referer", "-"),
            headers.get("user-agent", "-"),
            time.monotonic() - self._started,
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} {self.http_version}>"
