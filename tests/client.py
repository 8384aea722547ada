"""Raw-socket clients for the integration tests."""

import email.utils
import re
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

# Bytes read past the end of one response belong to the next (pipelining).
_leftover: "weakref.WeakKeyDictionary[socket.socket, bytes]" = weakref.WeakKeyDictionary()


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_close(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a new connection, then read until the server closes it."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        return read_until_close(sock, timeout)


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read one Content-Length framed response from a keep-alive connection."""
    sock.settimeout(timeout)
    buf = _leftover.pop(sock, b"")
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a full head: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before the full body")
        rest += data
    if len(rest) > length:
        _leftover[sock] = rest[length:]
    return status, headers, rest[:length]


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


_DATE = re.compile(rb"\r\nDate: ([^\r\n]*)\r\n")


def undated(response: bytes) -> bytes:
    """`response` with its Date value replaced by `<date>`, once checked to be an
    IMF-fixdate (RFC 9110 §5.6.7): so that a test can compare a whole response."""
    found = _DATE.search(response)
    assert found, f"no Date header: {response!r}"
    date = found[1].decode("latin-1")
    assert date.endswith(" GMT") and email.utils.parsedate_to_datetime(date), date
    return response[: found.start(1)] + b"<date>" + response[found.end(1) :]


@dataclass
class SseBlock:
    """One block of a Server-Sent Events stream (the lines up to a blank line), read as
    the WHATWG EventSource parser reads it: `data` is the data lines joined by LF."""

    event: str | None = None
    id: str | None = None
    retry: str | None = None
    data_lines: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    @property
    def is_comment(self) -> bool:
        """A block of comments only, such as a keepalive: the browser dispatches nothing."""
        fields = (self.event, self.id, self.retry)
        return bool(self.comments) and not self.data_lines and fields == (None, None, None)


# HTML's "Interpreting an event stream": lines end with CRLF, a lone LF or a lone CR.
_SSE_LINE_END = re.compile(r"\r\n|\r|\n")


def parse_sse(text: str) -> list[SseBlock]:
    """The complete blocks in `text` (what follows the last blank line is left out)."""
    blocks, block = [], SseBlock()
    lines = _SSE_LINE_END.split(text)
    for line in lines[:-1]:  # the last piece has no line end yet
        if not line:
            blocks.append(block)
            block = SseBlock()
            continue
        name, _, value = line.partition(":")  # no colon: the line is the name
        value = value[1:] if value.startswith(" ") else value
        if not name:
            block.comments.append(value)
        elif name == "data":
            block.data_lines.append(value)
        elif name in ("event", "id", "retry"):
            setattr(block, name, value)
    return blocks


class SseClient:
    """An EventSource over a raw socket: sends `GET target`, reads the head, then takes
    the body apart (chunked framing when the head says so) as it comes.

    >>> with SseClient(server.port, "/events") as client:
    ...     assert client.blocks_until(1)[0].data == "hello"
    """

    def __init__(
        self,
        port: int,
        target: str = "/events",
        headers: str = "",
        version: str = "HTTP/1.1",
        timeout: float = 30.0,
    ) -> None:
        self.sock = connect(port, timeout)
        self.sock.sendall(f"GET {target} {version}\r\nHost: x\r\n{headers}\r\n".encode())
        self.raw = b""  # received, not yet taken out of its framing
        self.body = b""  # the stream's bytes, unframed
        self.eof = False  # the server closed the connection
        self.ended = False  # the terminating chunk came
        while b"\r\n\r\n" not in self.raw:
            if not self._recv():
                raise ConnectionError(f"closed before a full head: {self.raw!r}")
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        self.head = head + b"\r\n\r\n"
        self.status = status_of(self.head)
        self.chunked = b"\r\ntransfer-encoding: chunked\r\n" in self.head.lower()
        self._unframe()

    def _recv(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.eof = not data
        self.raw += data
        return bool(data)

    def _unframe(self) -> None:
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while not self.ended:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end].split(b";")[0], 16)
            start = line_end + 2
            if len(self.raw) < start + size + 2:
                return
            assert self.raw[start + size : start + size + 2] == b"\r\n", self.raw
            self.body += self.raw[start : start + size]
            self.raw = self.raw[start + size + 2 :]
            self.ended = size == 0  # no trailers: "0\r\n\r\n"

    def read_until(self, done: Callable[[], bool]) -> None:
        """Receive until `done()`; ConnectionError if the stream ends first, TimeoutError
        (the socket's timeout) if nothing comes."""
        while not done():
            if self.eof or self.ended:
                raise ConnectionError(f"the stream ended; it sent {self.body!r}")
            self._recv()
            self._unframe()

    def read_to_end(self) -> bytes:
        """Receive until the server closes the connection; returns the unframed body."""
        while not self.eof:
            self._recv()
            self._unframe()
        return self.body

    def blocks(self) -> list[SseBlock]:
        """The complete blocks received so far."""
        # Up to the last LF (the server ends lines with LF): no character cut in two.
        return parse_sse(self.body[: self.body.rfind(b"\n") + 1].decode("utf-8"))

    def blocks_until(self, count: int) -> list[SseBlock]:
        """The first `count` blocks, once they have come."""
        self.read_until(lambda: len(self.blocks()) >= count)
        return self.blocks()[:count]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
