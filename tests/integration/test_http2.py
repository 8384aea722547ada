"""HTTP/2 (h2c prior knowledge, Upgrade: h2c, ALPN over TLS) with real clients,
flow control, and the known attacks. (Without the h2 package installed:
tests/system/test_without_h2.py.)"""

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from hyperframe.frame import ContinuationFrame, HeadersFrame

import mummy
from tests.integration.test_tls import cert  # noqa: F401  (the module-scoped fixture)
from tests.servers import HANG_S, tasks_in_flight, wait_for

BIG = bytes(range(256)) * 4096  # 1 MiB


def handler(request: mummy.Request) -> None:
    if request.path == "/big":
        request.respond(200, {"Content-Type": "application/octet-stream"}, BIG)
    elif request.path == "/text":
        request.respond(200, {"Content-Type": "text/plain"}, "abc" * 1000)
    elif request.path == "/echo":
        request.respond(200, None, request.body)
    else:
        request.respond(
            200, {"Content-Type": "text/plain"}, f"{request.http_version} {request.path}"
        )


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("curl")
    assert exe, "curl is needed by the tests"
    return subprocess.run([exe, "-sS", *args], capture_output=True, text=True, timeout=30)


def test_prior_knowledge_with_curl(serve) -> None:
    server = serve(handler)
    out = curl("--http2-prior-knowledge", f"http://127.0.0.1:{server.port}/a")
    assert out.stdout == "HTTP/2 /a", out.stderr


def test_upgrade_h2c_with_curl(serve) -> None:
    server = serve(handler)
    out = curl("--http2", "-v", f"http://127.0.0.1:{server.port}/up")
    assert out.stdout == "HTTP/2 /up"
    assert "101 Switching Protocols" in out.stderr


def test_alpn_h2_over_tls_with_curl_and_httpx(cert) -> None:  # noqa: F811
    server = mummy.Server(handler, workers=4)
    server.start(0, "127.0.0.1", certfile=cert[0], keyfile=cert[1])
    try:
        url = f"https://127.0.0.1:{server.port}/tls"
        out = curl("--http2", "--cacert", cert[0], url)
        assert out.stdout == "HTTP/2 /tls", out.stderr
        with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=cert[0])) as client:
            response = client.get(url)
            assert response.http_version == "HTTP/2" and response.text == "HTTP/2 /tls"
    finally:
        server.close()


def test_compression_and_bodies_over_http2(serve) -> None:
    server = serve(handler, max_body_len=100_000)
    with httpx.Client(http2=True, http1=False) as client:
        base = f"http://127.0.0.1:{server.port}"
        response = client.get(base + "/text", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert response.text == "abc" * 1000  # httpx decoded it
        assert client.post(base + "/echo", content=b"x" * 50_000).content == b"x" * 50_000
        assert client.post(base + "/echo", content=b"x" * 100_001).status_code == 413


class RawH2:
    """A hand-driven HTTP/2 client (h2 in client mode) for flow control and attacks."""

    def __init__(self, port: int, **settings: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(
                {getattr(h2.settings.SettingCodes, k): v for k, v in settings.items()}
            )
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, path: str, end: bool = True, *, flush: bool = True) -> int:
        """Open a stream; flush=False keeps its frames for the next flush (one write)."""
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream_id,
            [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")],
            end_stream=end,
        )
        if flush:
            self.flush()
        return stream_id

    def events(self) -> list[h2.events.Event]:
        """Events from what the server sent until it pauses for 0.5 s (or closes): one
        poll of a loop that checks, after each, whether what it waits for came."""
        out: list[h2.events.Event] = []
        self.sock.settimeout(0.5)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                out += self.conn.receive_data(data)
                self.flush()
        except TimeoutError:
            pass
        except (ConnectionResetError, h2.exceptions.ProtocolError):
            pass
        return out

    def events_until(
        self, done: Callable[[list[h2.events.Event]], bool], timeout: float = HANG_S
    ) -> list[h2.events.Event]:
        """Events from what the server sends, until `done(events)` holds or the
        connection ends; AssertionError if neither happens within `timeout` s."""
        out: list[h2.events.Event] = []
        deadline = time.monotonic() + timeout
        while not done(out):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"not seen within {timeout} s; seen: {out}") from None
            except ConnectionResetError:
                break
            if not data:
                break
            try:
                out += self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                break  # what the server sent after its GOAWAY
            self.flush()
        return out


def terminated(events: list[h2.events.Event]) -> bool:
    return any(isinstance(e, h2.events.ConnectionTerminated) for e in events)


def stream_ended(stream_id: int) -> Callable[[list[h2.events.Event]], bool]:
    def done(events: list[h2.events.Event]) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in events
        )

    return done


def goaway_code(events: list[h2.events.Event]) -> int | None:
    for event in events:
        if isinstance(event, h2.events.ConnectionTerminated):
            return int(event.error_code)
    return None


def test_streams_of_one_connection_run_in_parallel(serve) -> None:
    barrier = threading.Barrier(10, timeout=20)

    def waits_for_all(request: mummy.Request) -> None:
        barrier.wait()  # passes only if all ten streams are with workers at once
        request.respond(200, body="together")

    server = serve(waits_for_all, workers=16)
    client = RawH2(server.port)
    streams = {client.get(f"/{i}") for i in range(10)}
    bodies: dict[int, bytes] = {}
    for _ in range(40):
        for event in client.events():
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
        if len(bodies) == 10:
            break
    assert set(bodies) == streams and set(bodies.values()) == {b"together"}


def test_streams_count_against_max_pending_requests(serve) -> None:
    """With max_pending_requests=2, six streams of one write: two tasks in the ring (one
    running, one queued), four waiting on the connection in order; all six answered."""
    release = threading.Event()

    def holds(request: mummy.Request) -> None:
        release.wait(10)
        request.respond(200, body=request.path)

    server = serve(holds, workers=1, max_pending_requests=2)
    client = RawH2(server.port)
    client.events_until(
        lambda events: any(isinstance(e, h2.events.SettingsAcknowledged) for e in events)
    )
    streams = {client.get(f"/{i}", flush=False): f"/{i}".encode() for i in range(6)}
    client.flush()
    assert wait_for(lambda: tasks_in_flight(server) == 2)
    time.sleep(0.3)
    assert tasks_in_flight(server) == 2  # the other four wait outside the ring
    release.set()
    bodies: dict[int, bytes] = {}

    def all_answered(events: list[h2.events.Event]) -> bool:
        for event in events[len(seen) :]:
            seen.append(event)
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
        return len(bodies) == 6 and bodies == streams

    seen: list[h2.events.Event] = []
    client.events_until(all_answered)
    assert bodies == streams


def test_slow_reader_does_not_stall_other_streams(serve) -> None:
    server = serve(handler)
    client = RawH2(server.port, INITIAL_WINDOW_SIZE=1024)
    big = client.get("/big")
    small = client.get("/small")
    received: dict[int, bytearray] = {big: bytearray(), small: bytearray()}
    ended: set[int] = set()
    # Read without acknowledging the big stream's data: the small one still completes.
    for event in client.events_until(stream_ended(small)):
        if isinstance(event, h2.events.DataReceived):
            received[event.stream_id] += event.data
        elif isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
    assert small in ended and bytes(received[small]) == b"HTTP/2 /small"
    assert big not in ended and len(received[big]) <= 1024
    # Now give credit for the whole body: it comes through, intact.
    client.conn.increment_flow_control_window(2 * len(BIG), stream_id=big)
    client.conn.increment_flow_control_window(2 * len(BIG))
    client.flush()
    for _ in range(50):
        for event in client.events():
            if isinstance(event, h2.events.DataReceived):
                received[event.stream_id] += event.data
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
        if big in ended:
            break
    assert bytes(received[big]) == BIG


def test_rapid_reset_gets_goaway(serve) -> None:
    ran = []
    server = serve(lambda r: (ran.append(1), r.respond(200)))
    client = RawH2(server.port)
    for _ in range(400):
        stream_id = client.get("/", end=False)
        client.conn.reset_stream(stream_id)
        client.flush()
    assert goaway_code(client.events_until(terminated)) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert len(ran) < 400  # cancelled streams were not all run


def test_ping_flood_gets_goaway(serve) -> None:
    server = serve(handler)
    client = RawH2(server.port)
    for i in range(200):
        client.conn.ping(i.to_bytes(8, "big"))
    client.flush()
    assert goaway_code(client.events_until(terminated)) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_settings_flood_gets_goaway(serve) -> None:
    server = serve(handler)
    client = RawH2(server.port)
    for _ in range(200):
        client.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 10})
    client.flush()
    assert goaway_code(client.events_until(terminated)) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_continuation_flood_is_refused(serve) -> None:
    server = serve(handler)
    client = RawH2(server.port)
    headers = HeadersFrame(1)
    headers.data = client.conn.encoder.encode(
        [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
    )
    headers.flags.add("END_STREAM")
    frames = [headers.serialize()]
    for _ in range(200):  # never END_HEADERS
        frames.append(ContinuationFrame(1, data=b"").serialize())
    client.sock.sendall(b"".join(frames))
    code = goaway_code(client.events_until(terminated))
    assert code is not None and code != h2.errors.ErrorCodes.NO_ERROR


def test_hpack_bomb_is_bounded_by_max_headers_len(serve) -> None:
    ran = []
    server = serve(lambda r: (ran.append(1), r.respond(200)), max_headers_len=4096)
    client = RawH2(server.port)
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream_id,
        [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
        + [(f"x-h{i}", "v" * 100) for i in range(100)],  # ~10 KB decoded
        end_stream=True,
    )
    client.flush()

    def refused(events: list[h2.events.Event]) -> bool:
        return terminated(events) or any(isinstance(e, h2.events.StreamReset) for e in events)

    assert refused(client.events_until(refused))
    assert ran == []  # the handler never saw it


def test_goaway_on_close(serve) -> None:
    server = serve(handler, workers=2)
    client = RawH2(server.port)
    client.events_until(stream_ended(client.get("/")))
    closer = threading.Thread(target=server.close)
    closer.start()
    assert goaway_code(client.events_until(terminated)) == h2.errors.ErrorCodes.NO_ERROR
    closer.join(15)


def test_http2_disabled_answers_the_preface_with_400(serve) -> None:
    server = serve(handler, http2=False)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 400 ") and b"mummy-server[h2]" in data


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (Debian nghttp2-client) absent")
def test_h2load_as_a_second_implementation(serve) -> None:
    server = serve(handler, workers=8)
    out = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", f"http://127.0.0.1:{server.port}/"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
