"""`Request`: what a handler receives, and `respond()`, how it answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mummy.core.response import serialize
from mummy.errors import MummyError
from mummy.headers import Headers, HeadersInput, QueryParams

if TYPE_CHECKING:
    from mummy.core.http1 import RequestHead

Body = bytes | bytearray | memoryview | str

# Posts (connection, wire bytes, keep-alive) back to the IO thread.
ResponseSink = Callable[[tuple[Any, bytes, bool]], None]


def _header_pairs(headers: HeadersInput) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Headers):
        return headers.multi_items()
    if isinstance(headers, dict):
        return [(str(k), str(v)) for k, v in headers.items()]
    return Headers(headers).multi_items()


class Request:
    """A complete, in-memory HTTP request, handed to a handler on a worker thread.

    >>> def handler(request: mummy.Request) -> None:
    ...     request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")

    A Request is valid while its handler runs; `respond()` may be called from
    any thread during that time, exactly once.
    """

    __slots__ = (
        "_closing",
        "_conn",
        "_keep_alive",
        "_respond_lock",
        "_sink",
        "body",
        "headers",
        "http_version",
        "method",
        "path",
        "path_params",
        "query_params",
        "remote_address",
        "uri",
    )

    http_version: str
    """'HTTP/1.0' or 'HTTP/1.1'."""
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
    """The peer's IP address."""

    def __init__(
        self,
        head: RequestHead,
        body: bytes,
        path: str,
        query: list[tuple[str, str]],
        remote_address: str,
        conn: Any,
        sink: ResponseSink,
        closing: Callable[[], bool],
    ) -> None:
        self.http_version = head.version
        self.method = head.method
        self.uri = head.target
        self.path = path
        self.query_params = QueryParams.from_pairs(query)
        self.path_params = {}
        self.headers = Headers.from_pairs(head.headers)
        self.body = body
        self.remote_address = remote_address
        self._keep_alive = head.keep_alive
        self._conn = conn
        self._sink = sink
        self._closing = closing
        # A non-blocking acquire is an atomic test-and-set on both builds.
        self._respond_lock = threading.Lock()

    @property
    def responded(self) -> bool:
        """True once `respond()` has been called."""
        return self._respond_lock.locked()

    def respond(self, status: int, headers: HeadersInput = None, body: Body = b"") -> None:
        """Send the response: `status`, `headers` (a dict, a list of pairs or
        `Headers`) and `body` (bytes, or str sent as UTF-8). Content-Length,
        Date and Connection are added for you. Raises MummyError on a second call."""
        if isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, (bytearray, memoryview)):
            data = bytes(body)
        else:
            raise MummyError(f"body must be bytes or str, not {type(body).__name__}")
        wire, keep_alive = serialize(
            status,
            _header_pairs(headers),
            data,
            head_request=self.method == "HEAD",
            http10=self.http_version == "HTTP/1.0",
            keep_alive=self._keep_alive and not self._closing(),
        )
        if not self._respond_lock.acquire(blocking=False):
            raise MummyError(
                f"{self.method} {self.uri} has already been responded to; respond exactly once"
            )
        self._sink((self._conn, wire, keep_alive))

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} {self.http_version}>"
