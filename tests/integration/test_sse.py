"""Server-Sent Events over real sockets: curl, raw HTTP/1.1 and HTTP/1.0 clients that
check the bytes, a thousand streams at once, clients that stop reading or vanish,
shutdown, and two streams on one HTTP/2 connection."""

import os
import resource
import selectors
import shutil
import socket
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable

import h2.events
import pytest

import mummy
from tests.client import SseClient, connect, parse_sse, read_response
from tests.integration.test_http2 import RawH2
from tests.servers import HANG_S, serving, wait_for


class Streams:
    """The handler: GET /events answers with an EventStream kept under its ?name=
    (and its request under the same name); any other request is answered "page"."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_name: dict[str, mummy.EventStream] = {}

    def __call__(self, request: mummy.Request) -> None:
        if request.path == "/events":
            stream = request.respond_sse()
            with self.lock:
                self.by_name[request.query_params.get("name", "")] = stream
        else:
            request.respond(200, {"Content-Type": "text/plain"}, "page")

    def get(self, name: str = "") -> mummy.EventStream:
        """The stream opened as ?name=`name`, once its handler has run."""
        assert wait_for(lambda: name in self.by_name), f"no stream {name!r} was opened"
        with self.lock:
            return self.by_name[name]


def chunk(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def read_from(proc: subprocess.Popen[bytes], wanted: bytes) -> bytes:
    """What `proc` prints up to and including `wanted`, read as it comes."""
    assert proc.stdout is not None
    got = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while wanted not in got:
            assert selector.select(HANG_S), f"{wanted!r} not printed; got {got!r}"
            data = os.read(proc.stdout.fileno(), 65536)
            assert data, f"{proc.args} exited before printing {wanted!r}; got {got!r}"
            got += data
    return got


def test_curl_receives_events_as_they_are_sent(serve) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed by the tests (Debian package curl)"
    streams = Streams()
    server = serve(streams)
    proc = subprocess.Popen(
        [curl, "-N", "-s", f"http://127.0.0.1:{server.port}/events"], stdout=subprocess.PIPE
    )
    try:
        stream = streams.get()
        assert stream.send("hello", event="greeting", id="1")
        # The first event is printed while the response is still open: no buffering.
        assert read_from(proc, b"\n\n") == b"event: greeting\nid: 1\ndata: hello\n\n"
        assert stream.send("second")
        stream.close()
        rest, _ = proc.communicate(timeout=HANG_S)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, rest) == (0, b"data: second\n\n")


def test_head_and_event_bytes_over_http1_1(serve) -> None:
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port, headers="Accept-Encoding: gzip, deflate, br, zstd\r\n") as client:
        head = client.head
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        for line in (
            b"Content-Type: text/event-stream",
            b"Cache-Control: no-cache",
            b"X-Accel-Buffering: no",
            b"Transfer-Encoding: chunked",
        ):
            assert b"\r\n" + line + b"\r\n" in head, head
        lowered = head.lower()
        assert b"content-length:" not in lowered and b"content-encoding:" not in lowered, head
        assert b"connection: close" not in lowered, head

        stream = streams.get()
        assert stream.send("one\ntwo", event="update", id="7", retry=2500)
        event = b"event: update\nid: 7\nretry: 2500\ndata: one\ndata: two\n\n"
        # One event, one chunk, and nothing between the head and it.
        client.read_until(lambda: len(client.raw) >= len(chunk(event)) or client.body != b"")
        assert client.body == event and client.raw == b""


def test_http1_0_stream_is_delimited_by_the_close(serve) -> None:
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port, version="HTTP/1.0") as client:
        assert client.head.startswith(b"HTTP/1.1 200 ") and not client.chunked, client.head
        assert b"\r\nContent-Type: text/event-stream\r\n" in client.head
        stream = streams.get()
        assert stream.send("over 1.0", id="1")
        assert [(b.id, b.data) for b in client.blocks_until(1)] == [("1", "over 1.0")]
        stream.close()
        assert client.read_to_end() == b"id: 1\ndata: over 1.0\n\n"
    assert stream.closed and not stream.send("too late")


@pytest.mark.parametrize(
    ("field", "value"),
    [("event", "a\nb"), ("event", "a\rb"), ("id", "1\n"), ("id", "1\r2"), ("id", "\r\n")],
)
def test_line_ends_in_event_or_id_raise(serve, field, value) -> None:
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port) as client:
        stream = streams.get()
        with pytest.raises(mummy.MummyError):
            stream.send("data", **{field: value})
        # Nothing of the refused event went out, and the stream is still usable.
        assert stream.send("after", id="2") and not stream.closed
        assert [(b.id, b.data, b.event) for b in client.blocks_until(1)] == [("2", "after", None)]
        assert client.body == b"id: 2\ndata: after\n\n"


def test_retry_and_comments(serve) -> None:
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port) as client:
        stream = streams.get()
        assert stream.send("soon", retry=3000)
        stream.comment("just a note")
        stream.comment("two\nlines")
        stream.comment()
        assert stream.send("end")
        client.blocks_until(5)
        assert client.body == (
            b"retry: 3000\ndata: soon\n\n: just a note\n\n: two\n: lines\n\n:\n\ndata: end\n\n"
        )
        assert [b.is_comment for b in client.blocks()] == [False, True, True, True, False]


@pytest.mark.parametrize(
    "data",
    [
        "plain",
        "two\nlines",
        "crlf\r\nline",
        "lone\rcr",
        "trailing newline\n",
        "",
        "  indented",
        ": not a comment",
        "x\revent: injected\nid: 9\r\nretry: 1",
        "line\u2028separator and \x0cform feed are not line ends",
        "ünïcødé ✓",
    ],
)
def test_data_arrives_as_sent(serve, data) -> None:
    """What an EventSource reads back (lines split at CR, LF and CRLF, joined by LF)
    is what was sent, with line ends as LF; no field can be smuggled in through data."""
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port) as client:
        assert streams.get().send(data)
        (block,) = client.blocks_until(1)
        expected = data.replace("\r\n", "\n").replace("\r", "\n")
        assert (block.event, block.id, block.retry, block.data) == (None, None, None, expected)
        assert block.comments == []


def test_close_ends_the_response_and_the_connection_serves_the_next_request(serve) -> None:
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port) as client:
        stream = streams.get()
        assert stream.request.path == "/events" and not stream.closed
        assert stream.send("only", id="1")
        stream.close()
        client.read_until(lambda: client.ended)  # the terminating chunk
        assert client.body == b"id: 1\ndata: only\n\n" and client.raw == b""
        assert stream.closed and stream.send("after close") is False
        stream.close()  # a second close does nothing
        client.sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(client.sock)[::2] == (200, b"page")


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def test_a_thousand_streams_on_two_workers(serve) -> None:
    clients_count = 1000
    raise_open_file_limit(4 * clients_count + 256)  # each client's two ends, and spare
    streams = Streams()
    server = serve(streams, workers=2)
    clients: list[SseClient] = []
    try:
        for i in range(clients_count):
            clients.append(SseClient(server.port, f"/events?name={i}"))
        assert wait_for(lambda: len(streams.by_name) == clients_count)
        # Every stream is open and no worker is held by one: a plain request is answered.
        with connect(server.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[::2] == (200, b"page")

        everyone = [streams.get(str(i)) for i in range(clients_count)]

        ids = range(1, 21)

        def send_all() -> None:
            for n in ids:
                for stream in everyone:
                    assert stream.send(f"event {n}", id=str(n))

        sender = threading.Thread(target=send_all)
        sender.start()
        for client in clients:
            blocks = client.blocks_until(20)
            assert [(b.id, b.data) for b in blocks] == [
                (str(n), f"event {n}") for n in range(1, 21)
            ]
        sender.join(HANG_S)
        assert not sender.is_alive()

        for client in clients[::2]:
            client.close()
        gone, kept = everyone[::2], everyone[1::2]
        assert wait_for(lambda: all(stream.closed for stream in gone))
        assert not any(stream.closed for stream in kept)
        assert all(stream.send("still here") for stream in kept)
        for client in clients[1::2]:
            assert client.blocks_until(21)[-1].data == "still here"
    finally:
        for client in clients:
            client.close()


def test_a_client_that_does_not_read_is_closed_and_others_keep_receiving(serve) -> None:
    streams = Streams()
    server = serve(streams, sse_send_buffer_len=64 * 1024)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    stalled.settimeout(HANG_S)
    try:
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(b"GET /events?name=stalled HTTP/1.1\r\nHost: x\r\n\r\n")  # never reads
        with SseClient(server.port, "/events?name=reader") as reader:
            slow, fast = streams.get("stalled"), streams.get("reader")
            event = "x" * 1024
            sent = received = 0
            while slow.send(event):
                sent += 1
                # The kernel buffers some MiB; far past that, the bound was not applied.
                assert sent < 64 * 1024, "64 MiB queued for a client that reads nothing"
                if sent % 256 == 0:  # the reader is served all along
                    received += 1
                    assert fast.send(str(received), id=str(received))
                    assert reader.blocks_until(received)[-1].data == str(received)
            assert slow.closed and not fast.closed
            for _ in range(5):
                received += 1
                assert fast.send(str(received), id=str(received))
            blocks = reader.blocks_until(received)
            assert [b.id for b in blocks] == [str(n) for n in range(1, received + 1)]
    finally:
        stalled.close()


def test_keepalive_comments_and_a_vanished_client(serve) -> None:
    streams = Streams()
    server = serve(streams, sse_keepalive_interval=0.2)
    with SseClient(server.port, "/events?name=quiet") as quiet:
        # Nothing is sent: what comes is the keepalive.
        assert all(block.is_comment for block in quiet.blocks_until(3))
        gone = SseClient(server.port, "/events?name=gone")
        stream = streams.get("gone")
        gone.close()
        assert wait_for(lambda: stream.closed)
        assert stream.send("anyone?") is False
        assert not streams.get("quiet").closed


def test_server_close_ends_open_streams() -> None:
    streams = Streams()
    server = mummy.Server(streams, workers=2)
    with serving(server):
        clients = [SseClient(server.port, f"/events?name={i}") for i in range(3)]
        clients.append(SseClient(server.port, "/events?name=old", version="HTTP/1.0"))
        opened = [streams.get(name) for name in ("0", "1", "2", "old")]
        for stream in opened:
            assert stream.send("before close")
        closer = threading.Thread(target=server.close)
        closer.start()
        closer.join(HANG_S)
        assert not closer.is_alive(), "Server.close() did not return"
        for client in clients:
            with client:
                body = client.read_to_end()
                assert parse_sse(body.decode())[0].data == "before close"
        assert [client.ended for client in clients] == [True, True, True, False]
        assert all(stream.closed and not stream.send("after") for stream in opened)


class H2Streams:
    """What a RawH2 client received, per stream: the response head, the body, the end."""

    def __init__(self, client: RawH2) -> None:
        self.client = client
        self.heads: dict[int, dict[bytes, bytes]] = {}
        self.bodies: dict[int, bytes] = defaultdict(bytes)
        self.ended: set[int] = set()

    def until(self, done: Callable[[], bool]) -> None:
        """Receive until `done()` holds (AssertionError after the hang guard)."""
        taken = 0

        def check(events: list[h2.events.Event]) -> bool:
            nonlocal taken
            for event in events[taken:]:
                if isinstance(event, h2.events.ResponseReceived):
                    self.heads[event.stream_id] = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    self.bodies[event.stream_id] += event.data
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.add(event.stream_id)
            taken = len(events)
            return done()

        self.client.events_until(check)
        assert done(), f"the connection ended first: {dict(self.bodies)}"

    def blocks(self, stream_id: int) -> int:
        return len(parse_sse(self.bodies[stream_id].decode()))


def test_two_streams_on_one_http2_connection(serve) -> None:
    streams = Streams()
    server = serve(streams)
    client = RawH2(server.port)
    received = H2Streams(client)
    first, second = client.get("/events?name=a"), client.get("/events?name=b")
    a, b = streams.get("a"), streams.get("b")
    assert a.request.http_version == "HTTP/2"
    assert a.send("for a", id="1") and b.send("for b", id="1") and b.send("b again", id="2")
    received.until(lambda: received.blocks(first) == 1 and received.blocks(second) == 2)
    for stream_id in (first, second):
        head = received.heads[stream_id]
        assert head[b":status"] == b"200"
        assert head[b"content-type"] == b"text/event-stream"
        assert head[b"cache-control"] == b"no-cache"
        assert b"content-length" not in head and b"content-encoding" not in head
    assert received.bodies[first] == b"id: 1\ndata: for a\n\n"
    assert received.bodies[second] == b"id: 1\ndata: for b\n\nid: 2\ndata: b again\n\n"

    # Closing one ends its HTTP/2 stream only; the other goes on.
    a.close()
    received.until(lambda: first in received.ended)
    assert a.closed and not b.closed and a.send("after close") is False
    assert b.send("b after a")
    received.until(lambda: received.blocks(second) == 3)
    assert second not in received.ended
    client.sock.close()


def test_http2_keepalive_comments(serve) -> None:
    """The keepalive is written by the IO thread, into the HTTP/2 session."""
    streams = Streams()
    server = serve(streams, sse_keepalive_interval=0.2)
    client = RawH2(server.port)
    received = H2Streams(client)
    quiet = client.get("/events")
    received.until(lambda: received.blocks(quiet) >= 2)
    assert all(block.is_comment for block in parse_sse(received.bodies[quiet].decode()))
    assert not streams.get().closed
    client.sock.close()


def test_last_event_id_is_a_request_header(serve) -> None:
    streams = Streams()
    server = serve(streams)
    with SseClient(server.port, headers="Last-Event-ID: 42\r\n"):
        assert streams.get().request.headers["Last-Event-ID"] == "42"
