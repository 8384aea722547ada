"""Streamed responses (`request.respond_stream`) over real sockets: HTTP/1.1 chunked,
length-delimited and close-delimited framing, HEAD, errors, compression flushed per
chunk, contextvars, clients that leave and servers that close, HTTP/2 and TLS, slow
readers that hold no worker, and WSGI generators (Flask's `stream_with_context`)."""

import contextvars
import hashlib
import itertools
import logging
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import h2.errors
import h2.events
import httpx
import pytest
import zstandard
from flask import Flask, Response, stream_with_context
from flask import request as flask_request

import mummy
from mummy.wsgi import WSGIAdapter
from tests.client import connect, read_response
from tests.integration.test_http2 import RawH2
from tests.integration.test_tls import cert  # noqa: F401  (the module-scoped fixture)
from tests.servers import HANG_S, serving, wait_for

Serve = Callable[..., mummy.Server]
Handler = Callable[[mummy.Request], None]
Chunk = bytes | str

TEXT = {"Content-Type": "text/plain"}
BINARY = {"Content-Type": "application/octet-stream"}


# --- a raw HTTP/1.1 reader ---------------------------------------------------------------


class Head(NamedTuple):
    status: int
    fields: dict[str, str]  # names lower-cased
    raw: bytes


class Wire:
    """Buffered reads from one connection (plain or TLS): a response head, then its
    body in the framing the test expects. Every recv is bounded by `timeout` (a hang
    guard): a server that holds back a chunk fails the test instead of hanging it."""

    def __init__(self, sock: socket.socket, timeout: float = HANG_S) -> None:
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError(f"closed by the server; unread: {bytes(self.buf)!r}")
        self.buf += data

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        return self._take(n)

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        return self._take(end + 2)

    def head(self) -> Head:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        raw = self._take(end + 4)
        assert raw.startswith(b"HTTP/1."), raw
        lines = raw.decode("latin-1").split("\r\n")[:-2]
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return Head(int(lines[0].split(" ")[1]), fields, raw)

    def chunk(self) -> bytes:
        """One chunk's data (RFC 9112 §7.1); b"" for the last chunk, whose (empty)
        trailer section is read too."""
        size = int(self.line().split(b";")[0], 16)
        if size == 0:
            assert self.line() == b"\r\n"
            return b""
        data = self.exactly(size)
        assert self.exactly(2) == b"\r\n"
        return data

    def chunked_body(self) -> list[bytes]:
        """The chunks up to the last one, each as framed."""
        chunks = []
        while chunk := self.chunk():
            chunks.append(chunk)
        return chunks

    def rest(self) -> bytes:
        """Everything until the server closes the connection (a reset ends it too)."""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not data:
                break
            self.buf += data
        return self._take(len(self.buf))


def request_bytes(
    path: str = "/", *fields: str, method: str = "GET", version: str = "HTTP/1.1"
) -> bytes:
    head = f"{method} {path} {version}\r\nHost: x\r\n" + "".join(f"{f}\r\n" for f in fields)
    return (head + "\r\n").encode()


def open_wire(port: int, *requests: bytes) -> Wire:
    """A new connection with `requests` sent in one write (pipelined)."""
    sock = connect(port, timeout=HANG_S)
    sock.sendall(b"".join(requests))
    return Wire(sock)


# --- handlers and bodies -----------------------------------------------------------------


def streams(
    make_body: Callable[[mummy.Request], Iterable[Chunk]],
    headers: dict[str, str] | None = None,
    **options: Any,
) -> Handler:
    """A handler that streams `make_body(request)`, with `headers` (text/plain unless
    told); "/plain" is answered with `respond()`, for a request after a stream."""

    def handler(request: mummy.Request) -> None:
        if request.path == "/plain":
            request.respond(200, TEXT, "plain")
        else:
            request.respond_stream(200, headers or TEXT, make_body(request), **options)

    return handler


class Probe:
    """A generator's report: how many chunks it made, whether it saw GeneratorExit
    (close() while suspended) and whether its `finally` ran."""

    def __init__(self) -> None:
        self.made = 0
        self.exited = False
        self.finished = threading.Event()

    def generate(self, parts: Iterable[Chunk]) -> Iterator[Chunk]:
        try:
            for part in parts:
                self.made += 1  # resumes are one at a time, whichever thread runs them
                yield part
        except GeneratorExit:
            self.exited = True
            raise
        finally:
            self.finished.set()


class Chunks:
    """An iterator (not a generator: a generator closed before it started runs no
    `finally`) that counts the chunks it hands out and records `close()`."""

    def __init__(self, parts: Iterable[Chunk]) -> None:
        self._parts = iter(parts)
        self.made = 0
        self.closed = threading.Event()

    def __iter__(self) -> "Chunks":
        return self

    def __next__(self) -> Chunk:
        part = next(self._parts)
        self.made += 1
        return part

    def close(self) -> None:
        self.closed.set()


def gated(parts: Iterable[Chunk], gates: list[threading.Event]) -> Iterator[Chunk]:
    """Yield part i, then wait for gates[i] before making part i + 1: a client that
    receives part i before it sets gates[i] got it as it was produced."""
    for part, gate in zip(parts, gates, strict=True):
        yield part
        assert gate.wait(HANG_S), "the client never released the next chunk"


def steady(read: Callable[[], int], timeout: float = HANG_S) -> int:
    """Wait until `read()` stops changing (the same over 0.3 s), then return it;
    AssertionError if it is still changing after `timeout` s. For "the server
    stopped pulling chunks": a server that never stops fails here."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError(f"still changing after {timeout} s (at {last})")


# --- the API -----------------------------------------------------------------------------


def test_respond_stream_sets_responded_and_a_second_response_raises(serve: Serve) -> None:
    seen: list[object] = []

    def handler(request: mummy.Request) -> None:
        request.respond_stream(200, TEXT, [b"streamed"])
        seen.append(request.responded)
        for again in (
            lambda: request.respond(200, TEXT, "second"),
            lambda: request.respond_stream(200, TEXT, [b"second"]),
        ):
            try:
                again()
            except mummy.MummyError as exc:
                seen.append(exc)

    server = serve(handler)
    wire = open_wire(server.port, request_bytes("/"))
    assert wire.head().status == 200
    assert wire.chunked_body() == [b"streamed"]
    assert wait_for(lambda: len(seen) == 3)
    assert seen[0] is True
    assert all(isinstance(exc, mummy.MummyError) for exc in seen[1:]), seen


def test_a_body_that_is_not_an_iterable_of_chunks_raises(serve: Serve) -> None:
    errors: list[BaseException] = []

    def handler(request: mummy.Request) -> None:
        for body in (b"bytes", "str", 42):
            try:
                request.respond_stream(200, TEXT, body)  # type: ignore[arg-type]
            except mummy.MummyError as exc:
                errors.append(exc)
        request.respond(200, TEXT, "answered")

    server = serve(handler)
    with connect(server.port, timeout=HANG_S) as sock:
        sock.sendall(request_bytes("/"))
        assert read_response(sock, timeout=HANG_S)[2] == b"answered"
    assert len(errors) == 3, errors


def test_a_client_refusing_every_coding_gets_406_and_the_iterator_is_closed(
    serve: Serve,
) -> None:
    made: list[Chunks] = []

    def body(request: mummy.Request) -> Chunks:
        made.append(Chunks([b"never"]))
        return made[-1]

    server = serve(streams(body))
    with connect(server.port, timeout=HANG_S) as sock:
        sock.sendall(request_bytes("/", "Accept-Encoding: identity;q=0, *;q=0"))
        assert read_response(sock, timeout=HANG_S)[0] == 406
    assert made[0].closed.wait(HANG_S) and made[0].made == 0


# --- HTTP/1.1 framing --------------------------------------------------------------------


def test_chunked_framing_is_exact_and_pipelined_requests_follow_in_order(serve: Serve) -> None:
    # "é" is a str, sent as UTF-8; the empty chunk must not end the body (a zero-size
    # chunk is the last-chunk, RFC 9112 §7.1), so it is not sent at all.
    server = serve(streams(lambda request: [b"a", "é", b"", b"xyz"]))
    wire = open_wire(
        server.port, request_bytes("/one"), request_bytes("/plain"), request_bytes("/two")
    )
    for path in ("/one", "/plain", "/two"):
        head = wire.head()
        assert head.status == 200, path
        assert "connection" not in head.fields
        if path == "/plain":
            assert head.fields["content-length"] == "5" and wire.exactly(5) == b"plain"
            continue
        assert head.fields["transfer-encoding"] == "chunked"
        assert "content-length" not in head.fields
        assert wire.exactly(26) == b"1\r\na\r\n2\r\n\xc3\xa9\r\n3\r\nxyz\r\n0\r\n\r\n"
    assert wire.buf == b""
    wire.sock.close()


def test_an_empty_stream_is_one_last_chunk(serve: Serve) -> None:
    server = serve(streams(lambda request: ()))
    wire = open_wire(server.port, request_bytes("/"), request_bytes("/plain"))
    head = wire.head()
    assert head.fields["transfer-encoding"] == "chunked"
    assert wire.exactly(5) == b"0\r\n\r\n"
    assert wire.head().status == 200 and wire.exactly(5) == b"plain"
    wire.sock.close()


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_get_no_body(serve: Serve, status: int) -> None:
    # RFC 9110 §15.3.5, §15.4.5: no body; RFC 9112 §6.1: no Transfer-Encoding in a 204.
    def handler(request: mummy.Request) -> None:
        if request.path == "/plain":
            request.respond(200, TEXT, "plain")
        else:
            request.respond_stream(status, None, ())

    server = serve(handler)
    wire = open_wire(server.port, request_bytes("/"), request_bytes("/plain"))
    head = wire.head()
    assert head.status == status
    if status == 204:
        assert "transfer-encoding" not in head.fields, head.raw
    assert wire.head().status == 200 and wire.exactly(5) == b"plain"
    wire.sock.close()


def test_handler_content_length_gives_a_length_delimited_uncompressed_body(
    serve: Serve,
) -> None:
    server = serve(
        streams(lambda request: ["ab" * 500, "cd" * 500], {**TEXT, "Content-Length": "2000"})
    )
    wire = open_wire(
        server.port, request_bytes("/", "Accept-Encoding: gzip"), request_bytes("/plain")
    )
    head = wire.head()
    assert head.status == 200
    assert head.fields["content-length"] == "2000"
    assert "transfer-encoding" not in head.fields and "content-encoding" not in head.fields
    assert wire.exactly(2000) == b"ab" * 500 + b"cd" * 500
    assert wire.head().status == 200 and wire.exactly(5) == b"plain"  # still in step
    wire.sock.close()


@pytest.mark.parametrize(
    ("declared", "parts"),
    [(10, [b"abcd"]), (4, [b"abcd", b"efgh"]), (6, [b"abcd", b"efgh"])],
    ids=["shorter", "longer", "longer-mid-chunk"],
)
def test_content_length_mismatch_closes_the_connection(
    serve: Serve, declared: int, parts: list[bytes]
) -> None:
    server = serve(streams(lambda request: parts, {**BINARY, "Content-Length": str(declared)}))
    wire = open_wire(server.port, request_bytes("/"), request_bytes("/plain"))
    head = wire.head()
    assert head.fields["content-length"] == str(declared)
    body = wire.rest()  # ends: the server closed, and answered no second request
    sent = b"".join(parts)
    assert len(body) <= declared and sent.startswith(body), body
    if declared > len(sent):
        assert body == sent  # all it made, then the close says "cut short"
    wire.sock.close()


@pytest.mark.parametrize("connection", [None, "keep-alive"])
def test_http_1_0_gets_a_close_delimited_body(serve: Serve, connection: str | None) -> None:
    server = serve(streams(lambda request: [b"first ", "é ", b"", b"last"]))
    fields = [f"Connection: {connection}"] if connection else []
    wire = open_wire(server.port, request_bytes("/", *fields, version="HTTP/1.0"))
    head = wire.head()
    assert head.status == 200
    assert head.fields["connection"] == "close"
    assert "content-length" not in head.fields and "transfer-encoding" not in head.fields
    assert wire.rest() == "first é last".encode()
    wire.sock.close()


def test_head_closes_the_iterator_without_iterating_it(serve: Serve) -> None:
    made: list[Chunks] = []

    def body(request: mummy.Request) -> Chunks:
        made.append(Chunks(["some text " * 10, "more text"]))
        return made[-1]

    server = serve(streams(body))
    gzip = "Accept-Encoding: gzip"
    wire = open_wire(server.port, request_bytes("/", gzip, method="HEAD"), request_bytes("/", gzip))
    head = wire.head()
    get = wire.head()  # right after HEAD's head: HEAD had no body, not even a last-chunk
    assert head.status == get.status == 200
    # GET's fields, Transfer-Encoding aside: RFC 9112 §6.1 lets a HEAD response omit it.
    assert head.fields.get("transfer-encoding", "chunked") == "chunked"
    assert {k: v for k, v in head.fields.items() if k not in ("date", "transfer-encoding")} == {
        k: v for k, v in get.fields.items() if k not in ("date", "transfer-encoding")
    }
    assert get.fields["transfer-encoding"] == "chunked"
    assert get.fields["content-encoding"] == "gzip"
    decoded = zlib.decompress(b"".join(wire.chunked_body()), 31)
    assert decoded == ("some text " * 10 + "more text").encode()
    assert made[0].closed.wait(HANG_S) and made[0].made == 0
    assert made[1].made == 2
    wire.sock.close()


# --- errors ------------------------------------------------------------------------------


def raises_at_once() -> Iterator[bytes]:
    raise ValueError("expected by the test: before the first chunk")
    yield b"never"


def raises_after_one() -> Iterator[bytes]:
    yield b"first"
    raise ValueError("expected by the test: after the first chunk")


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(
        r.name.startswith("mummy") and r.exc_info and text in str(r.exc_info[1])
        for r in caplog.records
    )


def test_an_iterator_raising_before_its_first_chunk_gets_a_500(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mummy")
    server = serve(streams(lambda request: raises_at_once()))
    with connect(server.port, timeout=HANG_S) as sock:
        sock.sendall(request_bytes("/"))
        status, headers, _ = read_response(sock, timeout=HANG_S)
    assert status == 500 and "transfer-encoding" not in headers
    assert wait_for(lambda: logged(caplog, "before the first chunk"))


def test_an_iterator_raising_after_a_chunk_cuts_the_body_and_closes(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mummy")
    server = serve(streams(lambda request: raises_after_one()))
    wire = open_wire(server.port, request_bytes("/"), request_bytes("/plain"))
    head = wire.head()
    assert head.status == 200 and head.fields["transfer-encoding"] == "chunked"
    assert wire.chunk() == b"first"
    assert wire.rest() == b""  # no last-chunk, no answer to the pipelined request
    wire.sock.close()
    assert wait_for(lambda: logged(caplog, "after the first chunk"))


def test_a_chunk_that_is_not_bytes_or_str_is_an_error(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mummy")
    server = serve(streams(lambda request: [42]))  # type: ignore[list-item]
    with connect(server.port, timeout=HANG_S) as sock:
        sock.sendall(request_bytes("/"))
        assert read_response(sock, timeout=HANG_S)[0] == 500
    assert wait_for(lambda: logged(caplog, "bytes or str"))


# --- each chunk as it is produced --------------------------------------------------------


def test_each_chunk_is_sent_as_it_is_produced(serve: Serve) -> None:
    gates = [threading.Event() for _ in range(3)]
    server = serve(streams(lambda request: gated([b"one", b"two", b"three"], gates)))
    wire = open_wire(server.port, request_bytes("/"))
    assert wire.head().fields["transfer-encoding"] == "chunked"
    for part, gate in zip([b"one", b"two", b"three"], gates, strict=True):
        assert wire.chunk() == part  # before the generator may make the next
        gate.set()
    assert wire.chunk() == b""
    wire.sock.close()


# --- contextvars -------------------------------------------------------------------------

REQUEST_NAME: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_NAME")
STEP: contextvars.ContextVar[int] = contextvars.ContextVar("STEP")


def test_the_generator_runs_in_the_context_of_respond_stream(serve: Serve) -> None:
    # A threading.local set in the handler need not follow: resumes may run on any
    # worker. A ContextVar must, and what one resume sets, the next sees (one Context
    # for the whole stream: Flask's stream_with_context resets its tokens in it).
    gates = [threading.Event() for _ in range(3)]

    def body() -> Iterator[str]:
        for i in range(3):
            previous = STEP.get(-1)
            STEP.set(i)
            yield f"{REQUEST_NAME.get('unset')} {previous};"
            assert gates[i].wait(HANG_S)

    def handler(request: mummy.Request) -> None:
        REQUEST_NAME.set(request.path)
        request.respond_stream(200, TEXT, body())
        REQUEST_NAME.set("set after respond_stream")  # in the handler's context only

    server = serve(handler)
    wire = open_wire(server.port, request_bytes("/ctx"))
    assert wire.head().status == 200
    chunks = []
    for gate in gates:
        chunks.append(wire.chunk())
        gate.set()
    assert wire.chunk() == b""
    assert chunks == [b"/ctx -1;", b"/ctx 0;", b"/ctx 1;"]
    wire.sock.close()


# --- compression -------------------------------------------------------------------------


class Decoder:
    """Incremental decoding of a gzip (one member) or zstd body, as a browser does it."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = zlib.decompressobj(31)
        self._zstd = zstandard.ZstdDecompressor()
        self._frame = self._zstd.decompressobj()
        self.out = b""

    def feed(self, data: bytes) -> bytes:
        if self.coding == "gzip":
            assert not self._gzip.eof, "data after the end of the gzip member"
            self.out += self._gzip.decompress(data)
            return self.out
        while data:  # a zstd body may be several frames (RFC 8878 §3.1)
            self.out += self._frame.decompress(data)
            data = self._frame.unused_data if self._frame.eof else b""
            if self._frame.eof:
                self._frame = self._zstd.decompressobj()
        return self.out

    def ended(self) -> bool:
        if self.coding == "gzip":
            return self._gzip.eof and self._gzip.unused_data == b""
        return True  # zstd frames that ended: checked by the content


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_compressed_stream_decodes_chunk_by_chunk(serve: Serve, coding: str) -> None:
    # Small parts: compress_min_size does not apply to a stream.
    parts = [b"first part, ", b"second part, ", b"third part"]
    gates = [threading.Event() for _ in parts]
    server = serve(streams(lambda request: gated(parts, gates)))
    wire = open_wire(server.port, request_bytes("/", f"Accept-Encoding: {coding}"))
    head = wire.head()
    assert head.fields["content-encoding"] == coding
    assert head.fields["transfer-encoding"] == "chunked"
    assert "content-length" not in head.fields
    decoder = Decoder(coding)
    expected = b""
    for part, gate in zip(parts, gates, strict=True):
        expected += part
        while decoder.out != expected:  # before the generator may make the next part
            assert len(decoder.out) < len(expected) and expected.startswith(decoder.out)
            chunk = wire.chunk()
            assert chunk, f"the body ended at {decoder.out!r}"
            decoder.feed(chunk)
        gate.set()
    while chunk := wire.chunk():
        decoder.feed(chunk)
    assert decoder.out == expected and decoder.ended()
    wire.sock.close()


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_compressed_stream_of_many_chunks(serve: Serve, coding: str) -> None:
    parts = [f"line {i} of a streamed text body\n" for i in range(2000)]
    server = serve(streams(lambda request: iter(parts)))
    wire = open_wire(server.port, request_bytes("/", f"Accept-Encoding: {coding}"))
    assert wire.head().fields["content-encoding"] == coding
    decoder = Decoder(coding)
    for chunk in wire.chunked_body():
        decoder.feed(chunk)
    assert decoder.out == "".join(parts).encode() and decoder.ended()
    wire.sock.close()


@pytest.mark.parametrize(
    ("accept", "headers", "options"),
    [
        ("gzip", TEXT, {"compress": False}),
        (None, TEXT, {}),
        ("gzip", {"Content-Type": "image/png"}, {}),
    ],
    ids=["compress-false", "no-accept-encoding", "incompressible-type"],
)
def test_identity_streams(
    serve: Serve, accept: str | None, headers: dict[str, str], options: dict[str, Any]
) -> None:
    parts = [b"x" * 2000, b"y" * 2000]
    server = serve(streams(lambda request: parts, headers, **options))
    fields = [f"Accept-Encoding: {accept}"] if accept else []
    wire = open_wire(server.port, request_bytes("/", *fields))
    head = wire.head()
    assert "content-encoding" not in head.fields
    assert head.fields["transfer-encoding"] == "chunked"
    assert b"".join(wire.chunked_body()) == b"".join(parts)
    wire.sock.close()


# --- clients that leave, servers that close ----------------------------------------------


def endless(probe: Probe, size: int = 4096) -> Iterator[Chunk]:
    return probe.generate(itertools.repeat(b"x" * size))


@pytest.mark.parametrize("reading", [True, False], ids=["reading", "stalled"])
def test_a_client_leaving_mid_stream_closes_the_generator(serve: Serve, reading: bool) -> None:
    probes: list[Probe] = []

    def body(request: mummy.Request) -> Iterator[Chunk]:
        probes.append(Probe())
        return endless(probes[-1])

    server = serve(streams(body, BINARY))
    wire = open_wire(server.port, request_bytes("/"))
    assert wire.head().status == 200
    if reading:
        for _ in range(20):
            assert wire.chunk() == b"x" * 4096
    else:
        steady(lambda: probes[0].made if probes else -1)  # the server stopped pulling
    wire.sock.close()
    assert probes[0].finished.wait(HANG_S) and probes[0].exited
    with connect(server.port, timeout=HANG_S) as sock:  # the server still serves
        sock.sendall(request_bytes("/plain"))
        assert read_response(sock, timeout=HANG_S)[2] == b"plain"


@pytest.mark.parametrize("reading", [True, False], ids=["reading", "stalled"])
def test_server_close_during_an_endless_stream(serve: Serve, reading: bool) -> None:
    probe = Probe()
    server = serve(streams(lambda request: endless(probe), BINARY))
    wire = open_wire(server.port, request_bytes("/"))
    assert wire.head().status == 200
    assert wire.chunk() == b"x" * 4096
    reader = threading.Thread(target=wire.rest, daemon=True)  # reads until the close
    if reading:
        reader.start()
    else:
        steady(lambda: probe.made)
    closer = threading.Thread(target=server.close, kwargs={"timeout": 1.0})
    closer.start()
    closer.join(HANG_S)
    assert not closer.is_alive(), "Server.close() did not return"
    assert probe.finished.wait(HANG_S) and probe.exited
    if reading:
        reader.join(HANG_S)
        assert not reader.is_alive(), "the connection was not closed"
    wire.sock.close()


# --- HTTP/2 ------------------------------------------------------------------------------

PARTS = [b"alpha ", "béta ".encode(), b"", b"gamma"]
JOINED = b"".join(PARTS)
MB_CHUNK = 64 * 1024


def numbered(count: int) -> Iterator[bytes]:
    """`count` chunks of 64 KiB, each a fresh object made of its index: a body whose
    bytes say where they belong."""
    for i in range(count):
        yield i.to_bytes(4, "big") * (MB_CHUNK // 4)


def digest(count: int) -> str:
    hasher = hashlib.sha256()
    for chunk in numbered(count):
        hasher.update(chunk)
    return hasher.hexdigest()


def h2_handler(probes: list[Probe] | None = None, made: list[Chunks] | None = None) -> Handler:
    def handler(request: mummy.Request) -> None:
        if request.path == "/parts":
            request.respond_stream(200, TEXT, PARTS)
        elif request.path == "/text":
            request.respond_stream(200, TEXT, (f"line {i}\n" for i in range(500)))
        elif request.path.startswith("/mb/"):
            request.respond_stream(200, BINARY, numbered(16 * int(request.path[4:])))
        elif request.path == "/fail":
            request.respond_stream(200, TEXT, raises_after_one())
        elif request.path == "/endless":
            assert probes is not None
            probes.append(Probe())
            request.respond_stream(200, BINARY, endless(probes[-1], 1024))
        elif request.path == "/head":
            assert made is not None
            made.append(Chunks([b"never"]))
            request.respond_stream(200, TEXT, made[-1])
        else:
            request.respond(200, TEXT, "plain")

    return handler


def h2_client(base: str, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=base, http2=True, timeout=HANG_S, **options)


def data_of(events: list[h2.events.Event], stream_id: int) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
    )


def ended(events: list[h2.events.Event], stream_id: int) -> bool:
    return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in events)


def reset_code(events: list[h2.events.Event], stream_id: int) -> int | None:
    for e in events:
        if isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id:
            return int(e.error_code)
    return None


def raw_h2(port: int, **settings: int) -> RawH2:
    client = RawH2(port, **settings)
    client.conn.increment_flow_control_window(1 << 30)  # only streams are flow-limited
    client.flush()
    return client


def test_http2_streams_with_httpx(serve: Serve) -> None:
    server = serve(h2_handler())
    with h2_client(f"http://127.0.0.1:{server.port}", http1=False) as client:
        response = client.get("/parts")
        assert response.http_version == "HTTP/2"
        assert response.content == JOINED
        assert "transfer-encoding" not in response.headers
        hasher, size = hashlib.sha256(), 0
        with client.stream("GET", "/mb/10") as streamed:
            for piece in streamed.iter_raw():
                hasher.update(piece)
                size += len(piece)
        assert size == 10 * 16 * MB_CHUNK and hasher.hexdigest() == digest(160)


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_http2_compressed_stream_with_httpx(serve: Serve, coding: str) -> None:
    server = serve(h2_handler())
    with h2_client(f"http://127.0.0.1:{server.port}", http1=False) as client:
        response = client.get("/text", headers={"Accept-Encoding": coding})
    assert response.headers["content-encoding"] == coding
    assert response.text == "".join(f"line {i}\n" for i in range(500))


def test_http2_error_after_a_chunk_resets_only_its_stream(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mummy")
    server = serve(h2_handler())
    with h2_client(f"http://127.0.0.1:{server.port}", http1=False) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/fail")
        assert client.get("/parts").content == JOINED
    client = raw_h2(server.port)
    failing, fine = client.get("/fail"), client.get("/parts")
    events = client.events_until(
        lambda seen: reset_code(seen, failing) is not None and ended(seen, fine)
    )
    assert data_of(events, failing) == b"first" and not ended(events, failing)
    assert reset_code(events, failing) != h2.errors.ErrorCodes.NO_ERROR
    assert data_of(events, fine) == JOINED
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    client.sock.close()
    assert wait_for(lambda: logged(caplog, "after the first chunk"))


@pytest.mark.parametrize(
    ("declared", "parts"), [(10, [b"abcd"]), (4, [b"abcd", b"efgh"])], ids=["shorter", "longer"]
)
def test_http2_content_length_mismatch_resets_the_stream(
    serve: Serve, declared: int, parts: list[bytes]
) -> None:
    server = serve(streams(lambda request: parts, {**BINARY, "Content-Length": str(declared)}))
    client = raw_h2(server.port)
    stream = client.get("/")
    events = client.events_until(lambda seen: reset_code(seen, stream) is not None)
    assert not ended(events, stream)
    assert b"".join(parts).startswith(data_of(events, stream))
    assert len(data_of(events, stream)) <= declared
    fine = client.get("/plain")  # the connection goes on
    assert data_of(client.events_until(lambda seen: ended(seen, fine)), fine) == b"plain"
    client.sock.close()


def test_http2_each_chunk_is_sent_as_it_is_produced(serve: Serve) -> None:
    gates = [threading.Event() for _ in range(3)]
    server = serve(streams(lambda request: gated([b"one", b"two", b"three"], gates)))
    client = raw_h2(server.port)
    stream = client.get("/")
    received = b""
    for part, gate in zip([b"one", b"two", b"three"], gates, strict=True):
        # Each part arrives before its gate opens (nothing more can come until then).
        events = client.events_until(lambda seen, want=part: data_of(seen, stream) == want)
        received += data_of(events, stream)
        gate.set()
    assert received == b"onetwothree"
    assert ended(client.events_until(lambda seen: ended(seen, stream)), stream)
    client.sock.close()


def test_http2_head_closes_the_iterator_without_iterating_it(serve: Serve) -> None:
    made: list[Chunks] = []
    server = serve(h2_handler(made=made))
    client = raw_h2(server.port)
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream,
        [(":method", "HEAD"), (":path", "/head"), (":scheme", "http"), (":authority", "x")],
        end_stream=True,
    )
    client.flush()
    events = client.events_until(lambda seen: ended(seen, stream))
    responses = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert len(responses) == 1 and dict(responses[0].headers)[b":status"] == b"200"
    assert data_of(events, stream) == b""
    assert made[0].closed.wait(HANG_S) and made[0].made == 0
    client.sock.close()


def test_http2_client_reset_closes_the_generator_and_the_connection_serves_on(
    serve: Serve,
) -> None:
    probes: list[Probe] = []
    server = serve(h2_handler(probes))
    client = raw_h2(server.port)
    stream = client.get("/endless")
    client.events_until(lambda seen: len(data_of(seen, stream)) >= 4096)
    client.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
    client.flush()
    assert probes[0].finished.wait(HANG_S) and probes[0].exited
    after = client.get("/parts")
    assert data_of(client.events_until(lambda seen: ended(seen, after)), after) == JOINED
    client.sock.close()


def test_http2_stalled_stream_holds_no_worker_and_others_go_on(serve: Serve) -> None:
    # The client grants 1 KiB per stream and never more for /endless: the server
    # stops pulling its chunks (bounded by stream_buffer_len), and the two workers
    # still answer other streams of the same connection.
    probes: list[Probe] = []
    server = serve(h2_handler(probes), workers=2, stream_buffer_len=64 * 1024)
    client = raw_h2(server.port, INITIAL_WINDOW_SIZE=1024)
    stalled = client.get("/endless")
    client.events_until(lambda seen: len(data_of(seen, stalled)) >= 1024)
    made = steady(lambda: probes[0].made)
    assert made * 1024 < 1 << 20, f"{made} chunks of 1 KiB pulled for a stalled stream"
    for _ in range(4):  # more streams than workers
        other = client.get("/plain")
        events = client.events_until(lambda seen, s=other: ended(seen, s))
        assert data_of(events, other) == b"plain"
    client.sock.close()
    assert probes[0].finished.wait(HANG_S)


# --- TLS ---------------------------------------------------------------------------------


def test_tls_http1_stream_with_httpx_and_raw_ssl(cert: tuple[str, str]) -> None:  # noqa: F811
    gates = [threading.Event() for _ in range(3)]

    def handler(request: mummy.Request) -> None:
        if request.path == "/gated":
            request.respond_stream(200, TEXT, gated([b"one", b"two", b"three"], gates))
        else:
            h2_handler()(request)

    context = ssl.create_default_context(cafile=cert[0])
    with serving(mummy.Server(handler, workers=4), certfile=cert[0], keyfile=cert[1]) as server:
        with httpx.Client(
            base_url=f"https://127.0.0.1:{server.port}", verify=context, timeout=HANG_S
        ) as client:
            response = client.get("/parts")
            assert response.http_version == "HTTP/1.1"
            assert response.headers["transfer-encoding"] == "chunked"
            assert response.content == JOINED
            with client.stream("GET", "/mb/10") as streamed:
                hasher = hashlib.sha256()
                for piece in streamed.iter_raw():
                    hasher.update(piece)
            assert hasher.hexdigest() == digest(160)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=HANG_S)
        context.set_alpn_protocols(["http/1.1"])
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(request_bytes("/gated") + request_bytes("/plain"))
            wire = Wire(sock)
            assert wire.head().fields["transfer-encoding"] == "chunked"
            for part, gate in zip([b"one", b"two", b"three"], gates, strict=True):
                assert wire.chunk() == part
                gate.set()
            assert wire.chunk() == b""
            assert wire.head().status == 200 and wire.exactly(5) == b"plain"


def test_tls_http2_stream_with_httpx(cert: tuple[str, str]) -> None:  # noqa: F811
    context = ssl.create_default_context(cafile=cert[0])
    server = mummy.Server(h2_handler(), workers=4)
    with (
        serving(server, certfile=cert[0], keyfile=cert[1]),
        h2_client(f"https://127.0.0.1:{server.port}", verify=context) as client,
    ):
        response = client.get("/parts")
        assert response.http_version == "HTTP/2" and response.content == JOINED
        assert client.get("/mb/2").content == b"".join(numbered(32))
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/fail")
        assert client.get("/text", headers={"Accept-Encoding": "gzip"}).text == "".join(
            f"line {i}\n" for i in range(500)
        )


# --- slow readers ------------------------------------------------------------------------

HUGE = 1600  # chunks of 64 KiB: 100 MiB


def rss_bytes() -> int:
    """This process's resident set (the server runs in it), from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_slow_readers_hold_no_worker_and_no_memory(serve: Serve) -> None:
    probes: list[Probe] = []

    def handler(request: mummy.Request) -> None:
        if request.path == "/huge":
            probe = Probe()
            probes.append(probe)
            request.respond_stream(200, BINARY, probe.generate(numbered(HUGE)))
        else:
            request.respond(200, TEXT, "plain")

    server = serve(handler, workers=2)
    with connect(server.port, timeout=HANG_S) as sock:  # warm up: a worker, a buffer
        sock.sendall(request_bytes("/plain"))
        assert read_response(sock, timeout=HANG_S)[2] == b"plain"
    before = rss_bytes()
    slow = []
    for _ in range(10):
        sock = socket.socket()
        # Before connect, so that the window offered is small: the kernel takes little.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(HANG_S)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(request_bytes("/huge"))
        slow.append(sock)
    try:
        assert wait_for(lambda: len(probes) == 10)
        with connect(server.port, timeout=HANG_S) as sock:  # answered by a free worker
            sock.sendall(request_bytes("/plain"))
            assert read_response(sock, timeout=HANG_S)[2] == b"plain"
        made = steady(lambda: sum(probe.made for probe in probes))
        grown = rss_bytes() - before
        assert grown < 50 << 20, f"RSS grew {grown >> 20} MiB with 10 stalled streams"
        # Each stream's chunks: the stream buffer and what the kernel holds, not 100 MiB.
        assert max(probe.made for probe in probes) < 128, [p.made for p in probes]
        assert made < 10 * 128
        fast = connect(server.port, timeout=HANG_S)
        fast.sendall(request_bytes("/huge"))
        wire = Wire(fast)
        assert wire.head().fields["transfer-encoding"] == "chunked"
        hasher, size = hashlib.sha256(), 0
        while chunk := wire.chunk():
            hasher.update(chunk)
            size += len(chunk)
        assert size == HUGE * MB_CHUNK and hasher.hexdigest() == digest(HUGE)
        fast.close()
    finally:
        for sock in slow:
            sock.close()
    assert wait_for(lambda: all(probe.finished.is_set() for probe in probes))


# --- WSGI --------------------------------------------------------------------------------

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]


def test_wsgi_list_body_keeps_its_content_length(serve: Serve) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"one ", b"two"]

    server = serve(WSGIAdapter(app))
    wire = open_wire(server.port, request_bytes("/"))
    head = wire.head()
    assert head.fields["content-length"] == "7" and "transfer-encoding" not in head.fields
    assert wire.exactly(7) == b"one two"
    wire.sock.close()


def test_wsgi_generator_is_streamed_chunk_by_chunk(serve: Serve) -> None:
    gates = [threading.Event() for _ in range(3)]
    probe = Probe()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[Chunk]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return probe.generate(gated([b"one", b"two", b"three"], gates))

    server = serve(WSGIAdapter(app))
    wire = open_wire(server.port, request_bytes("/"), request_bytes("/again"))
    head = wire.head()
    assert head.fields["transfer-encoding"] == "chunked" and "content-length" not in head.fields
    for part, gate in zip([b"one", b"two", b"three"], gates, strict=True):
        assert wire.chunk() == part
        gate.set()
    assert wire.chunk() == b""
    assert probe.finished.wait(HANG_S)  # close(), as PEP 3333 asks
    assert wire.head().status == 200  # the pipelined request, after the stream
    assert wire.chunked_body() == [b"one", b"two", b"three"]  # its gates are open
    wire.sock.close()


def test_wsgi_client_leaving_mid_stream_closes_the_iterable(serve: Serve) -> None:
    probe = Probe()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[Chunk]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return endless(probe)

    server = serve(WSGIAdapter(app))
    wire = open_wire(server.port, request_bytes("/"))
    assert wire.head().fields["transfer-encoding"] == "chunked"
    assert wire.chunk() == b"x" * 4096
    wire.sock.close()
    assert probe.finished.wait(HANG_S) and probe.exited


def streaming_flask_app(gates: list[threading.Event]) -> Flask:
    app = Flask(__name__)

    @app.get("/stream")
    def stream() -> Response:
        @stream_with_context
        def chunks() -> Iterator[str]:
            for i, gate in enumerate(gates):
                yield f"{flask_request.path}?{flask_request.args['name']} {i}\n"
                assert gate.wait(HANG_S)

        return Response(chunks(), mimetype="text/plain")

    return app


def test_flask_stream_with_context_sees_the_request(serve: Serve) -> None:
    gates = [threading.Event() for _ in range(3)]
    server = serve(WSGIAdapter(streaming_flask_app(gates)))
    wire = open_wire(
        server.port, request_bytes("/stream?name=mummy"), request_bytes("/stream?name=again")
    )
    head = wire.head()
    assert head.status == 200 and head.fields["transfer-encoding"] == "chunked"
    for i, gate in enumerate(gates):
        assert wire.chunk() == f"/stream?mummy {i}\n".encode()
        gate.set()
    assert wire.chunk() == b""  # stream_with_context left its context cleanly
    head = wire.head()  # the second request: the gates are open now
    assert head.status == 200
    assert b"".join(wire.chunked_body()) == b"".join(
        f"/stream?again {i}\n".encode() for i in range(3)
    )
    wire.sock.close()
