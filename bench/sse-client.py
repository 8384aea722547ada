#!/usr/bin/env python3
"""The streams benchmark's client: many open Server-Sent Events streams on one thread
(selectors: epoll on Linux), the standard library only, so that bench/run's own
interpreter runs it.

    python3 bench/sse-client.py URL STREAMS BROADCAST_URL ROUNDS

Opens STREAMS HTTP/1.1 GETs of URL (at most 200 connecting at a time); a stream counts as
open once its `open` event came (the app sends it after registering the stream). Prints
{"phase": "opened", ...} and waits for a line on stdin (the driver reads the server's
memory meanwhile). Then, ROUNDS times: POSTs the round's number to BROADCAST_URL, which
sends it as the id of one event to every stream, and prints {"phase": "broadcast", ...}
with the time from the POST until every stream had that event. Waits for another line
on stdin, closes everything, prints {"phase": "done"} and exits. Raises its own
RLIMIT_NOFILE: a socket per stream.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import socket
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

CONNECTING_AT_ONCE = 200
OPEN_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 120.0


def emit(event: dict[str, object]) -> None:
    print(json.dumps(event), flush=True)


def raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Stream:
    """One GET of the event stream: its socket and what has come of the response so far
    (the head, then a chunked body cut into events)."""

    __slots__ = ("body", "head_done", "opened", "raw", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.raw = bytearray()  # bytes received, not yet de-chunked
        self.body = bytearray()  # de-chunked, not yet a whole event
        self.head_done = False
        self.opened = False  # its `open` event came

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """The events that `data` completes, each as its fields (comments left out).
        Raises ValueError on a response that is not an open event stream."""
        self.raw += data
        if not self.head_done:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return []
            head = bytes(self.raw[:end]).lower()
            del self.raw[: end + 4]
            if not head.startswith(b"http/1.1 200 ") or b"transfer-encoding: chunked" not in head:
                raise ValueError(f"not a chunked 200: {head[:200]!r}")
            self.head_done = True
        self.dechunk()
        events = []
        while (end := self.body.find(b"\n\n")) >= 0:
            block = bytes(self.body[:end]).decode()
            del self.body[: end + 2]
            fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
            fields.pop("", None)  # a comment line (": keep-alive")
            if fields:
                events.append(fields)
        return events

    def dechunk(self) -> None:
        # RFC 9112 §7.1: a size line, that many bytes, CRLF. The CRLF after the data is
        # met where the next size line would start, and skipped as an empty line.
        while (eol := self.raw.find(b"\r\n")) >= 0:
            if eol == 0:
                del self.raw[:2]
                continue
            size = int(bytes(self.raw[:eol]).split(b";")[0], 16)
            if size == 0:
                raise ValueError("the server ended the stream")
            if len(self.raw) < eol + 2 + size:
                return
            self.body += self.raw[eol + 2 : eol + 2 + size]
            del self.raw[: eol + 2 + size]


class Client:
    """Every stream on one selector, how many are open or failed, and which broadcast a
    round waits for."""

    def __init__(self, url: str, count: int) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        self.count = count
        self.selector = selectors.DefaultSelector()
        self.started = self.open = self.failed = 0
        self.first_error: str | None = None
        self.wanted: str | None = None  # the id of the round's broadcast
        self.received = 0
        self.last_received = 0.0

    def connect_next(self) -> None:
        self.started += 1
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(self.address)
        self.selector.register(sock, selectors.EVENT_WRITE, Stream(sock))

    def fail(self, stream: Stream, why: str) -> None:
        """A stream that could not open, or that ended: counted, and its error kept."""
        self.selector.unregister(stream.sock)
        stream.sock.close()
        self.failed += 1
        self.open -= stream.opened
        self.first_error = self.first_error or why

    def on_ready(self, stream: Stream, mask: int) -> None:
        sock = stream.sock
        try:
            if mask & selectors.EVENT_WRITE:
                if error := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise OSError(error, f"connect: {os.strerror(error)}")
                sock.send(self.request)  # ~100 bytes into an empty send buffer
                self.selector.modify(sock, selectors.EVENT_READ, stream)
                return
            data = sock.recv(65536)
            if not data:
                raise ValueError("the server closed the connection")
            events = stream.feed(data)
        except (OSError, ValueError) as exc:
            self.fail(stream, str(exc))
            return
        for fields in events:
            if fields.get("event") == "open":
                stream.opened = True
                self.open += 1
            elif fields.get("id") == self.wanted:
                self.received += 1
                self.last_received = time.perf_counter()

    def pump(
        self, done: Callable[[], bool], deadline: float, post: PostReply | None = None
    ) -> None:
        """Serve ready sockets, and start connecting the next streams, until `done()` or
        the deadline."""
        while not done() and (left := deadline - time.perf_counter()) > 0:
            connecting = self.started - self.open - self.failed
            while self.started < self.count and connecting < CONNECTING_AT_ONCE:
                self.connect_next()
                connecting += 1
            for key, mask in self.selector.select(min(left, 1.0)):
                if post is not None and key.data is post:
                    post.on_readable()
                else:
                    self.on_ready(key.data, mask)

    def open_all(self) -> dict[str, object]:
        started = time.perf_counter()
        self.pump(lambda: self.open + self.failed >= self.count, started + OPEN_TIMEOUT_S)
        return {
            "phase": "opened",
            "streams": self.open,
            "failed": self.count - self.open,
            "first_error": self.first_error,
            "open_s": time.perf_counter() - started,
        }

    def broadcast(self, url: str, number: int) -> dict[str, object]:
        self.wanted, self.received, expected = str(number), 0, self.open
        t0 = time.perf_counter()
        post = PostReply(url, self.wanted, self.selector)

        def done() -> bool:  # a stream that ends meanwhile is not waited for: it is lost
            return post.reply is not None and self.received >= self.open

        self.pump(done, t0 + ROUND_TIMEOUT_S, post)
        reply = post.reply or {}
        return {
            "phase": "broadcast",
            "round": number,
            "streams": reply.get("streams"),
            "sent": reply.get("sent"),
            "server_queued_ms": reply.get("queued_ms"),
            "response_ms": (post.answered - t0) * 1000 if post.answered else None,
            "all_received_ms": (
                (self.last_received - t0) * 1000 if self.received >= expected else None
            ),
            "expected": expected,
            "received": self.received,
        }

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]


class PostReply:
    """POST `body` to `url` and read the JSON answer, in the streams' own loop."""

    def __init__(self, url: str, body: str, selector: selectors.BaseSelector) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=10)
        self.sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length:"
            f" {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
        )
        self.sock.setblocking(False)
        self.selector = selector
        selector.register(self.sock, selectors.EVENT_READ, self)
        self.data = b""
        self.reply: dict[str, object] | None = None
        self.answered = 0.0

    def on_readable(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        self.data += chunk
        head, blank, body = self.data.partition(b"\r\n\r\n")
        if chunk and not blank:
            return
        fields = dict(line.partition(b":")[::2] for line in head.lower().split(b"\r\n")[1:])
        if chunk and len(body) < int(fields.get(b"content-length", len(body) + 1)):
            return
        self.selector.unregister(self.sock)
        self.sock.close()
        self.answered = time.perf_counter()
        try:
            self.reply = json.loads(body)
        except ValueError:
            self.reply = {"error": self.data[:200].decode(errors="replace")}


def main() -> int:
    url, count, broadcast_url, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    raise_nofile(count + 256)
    client = Client(url, count)
    emit(client.open_all())
    sys.stdin.readline()
    for number in range(1, rounds + 1):
        emit(client.broadcast(broadcast_url, number))
    sys.stdin.readline()
    client.close()
    emit({"phase": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
