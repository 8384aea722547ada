"""Raw-socket clients for the integration tests."""

import email.utils
import re
import socket
import time
import weakref

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
