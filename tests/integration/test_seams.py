"""Where one protocol meets another: error answers on HTTP/2 streams, shutdown in
each protocol, the WebSocket send bound and upgrades that lose their connection.

Each test here failed before the fix it guards (issue 12)."""

import gc
import gzip
import os
import socket
import ssl
import struct
import threading
import time
import weakref
from collections.abc import Callable

import h2.connection
import h2.errors
import h2.events
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, RstStreamFrame
from websockets.sync.client import connect as ws_connect

import mummy
from mummy import Event, MessageKind
from tests.client import connect, read_response, read_until_close
from tests.integration.test_http2 import RawH2, curl
from tests.integration.test_tls import cert  # noqa: F401  (the module-scoped fixture)
from tests.integration.test_websocket import LEFTOVER, client_frame, raw_upgrade
from tests.servers import tasks_in_flight, wait_for


def answers(client: RawH2, want: int, rounds: int = 60) -> tuple[dict[int, dict], list]:
    """Read until `want` streams ended or were reset: {stream: {status, headers,
    body, reset}}, and every event seen."""
    streams: dict[int, dict] = {}
    seen: list[h2.events.Event] = []
    for _ in range(rounds):
        for event in client.events():
            seen.append(event)
            sid = getattr(event, "stream_id", None)
            if sid is None:
                continue
            entry = streams.setdefault(sid, {"body": b"", "ended": False, "reset": None})
            if isinstance(event, h2.events.ResponseReceived):
                fields = {k.decode(): v.decode() for k, v in event.headers}
                entry["status"], entry["headers"] = int(fields[":status"]), fields
            elif isinstance(event, h2.events.DataReceived):
                entry["body"] += event.data
                client.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                client.flush()
            elif isinstance(event, h2.events.StreamEnded):
                entry["ended"] = True
            elif isinstance(event, h2.events.StreamReset):
                entry["reset"] = event.error_code
        if sum(1 for e in streams.values() if e["ended"] or e["reset"] is not None) >= want:
            break
    return streams, seen


def terminated(events: list) -> list[h2.events.ConnectionTerminated]:
    return [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]


def post(client: RawH2, path: str, body: bytes, encoding: str) -> int:
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream_id,
        [
            (":method", "POST"),
            (":path", path),
            (":scheme", "http"),
            (":authority", "x"),
            ("content-encoding", encoding),
        ],
    )
    client.conn.send_data(stream_id, body, end_stream=True)
    client.flush()
    return stream_id


def app(request: mummy.Request) -> None:
    if request.path == "/raise":
        raise RuntimeError("a bug in the handler")
    if request.path == "/slow":
        time.sleep(0.3)  # for the test of queue_timeout=0.2: longer than the timeout
    request.respond(200, {"Content-Type": "text/plain"}, f"ok {request.path}")


# --- 1. HTTP/2 error answers on their own stream ---------------------------------


def test_http2_bad_target_gets_400_from_curl(serve) -> None:
    server = serve(app)
    out = curl(
        "--http2-prior-knowledge", "-w", "\n%{http_code}", f"http://127.0.0.1:{server.port}/%zz"
    )
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition("\n")
    assert code == "400" and "percent" in body.lower(), out.stdout


def test_http2_errors_are_answered_on_their_streams_and_spare_the_others(serve) -> None:
    server = serve(app, max_body_len=1000)
    client = RawH2(server.port)
    good1 = client.get("/first")
    bad_target = client.get("/%zz")
    corrupt = post(client, "/c", b"definitely not gzip", "gzip")
    unknown = post(client, "/u", b"abc", "x-unknown")
    bomb = post(client, "/b", gzip.compress(b"\0" * 100_000), "gzip")
    raising = client.get("/raise")
    good2 = client.get("/second")
    streams, seen = answers(client, 7)
    assert not terminated(seen), "the connection must survive its streams' errors"
    expected = {
        good1: 200,
        bad_target: 400,
        corrupt: 400,
        unknown: 415,
        bomb: 413,
        raising: 500,
        good2: 200,
    }
    assert {sid: streams[sid].get("status") for sid in expected} == expected
    assert all(streams[sid]["ended"] for sid in expected)
    assert streams[good2]["body"] == b"ok /second"
    # Still usable afterwards.
    again = client.get("/third")
    streams, _ = answers(client, 1)
    assert streams[again]["status"] == 200 and streams[again]["body"] == b"ok /third"


def test_http2_queue_timeout_sheds_with_503_on_the_stream(serve) -> None:
    server = serve(app, workers=2, queue_timeout=0.2)
    client = RawH2(server.port)
    ids = [client.get("/slow") for _ in range(12)]
    streams, seen = answers(client, 12, rounds=80)
    assert not terminated(seen)
    statuses = [streams[sid].get("status") for sid in ids]
    assert set(statuses) == {200, 503}, statuses
    assert statuses.count(200) >= 2
    for sid in ids:
        assert streams[sid]["ended"]
        if streams[sid]["status"] == 503:
            assert streams[sid]["headers"]["retry-after"] == "1"


# --- 2. shutdown, per protocol ---------------------------------------------------


def slow_server(**options) -> tuple[mummy.Server, threading.Event]:
    """One worker; /slow holds it until released (or 5 s)."""
    release = threading.Event()
    started = threading.Event()

    def handler(request: mummy.Request) -> None:
        if request.path == "/slow":
            started.set()
            release.wait(5)
        request.respond(200, {"Content-Type": "text/plain"}, f"ok {request.path}")

    server = mummy.Server(handler, workers=1, **options)
    server.start(0, "127.0.0.1")
    server.started = started  # type: ignore[attr-defined]
    return server, release


def close_in_background(server: mummy.Server) -> threading.Thread:
    # Queued work still waiting 1 s before the deadline is refused.
    closer = threading.Thread(target=server.close, kwargs={"timeout": 2.0})
    closer.start()
    return closer


def test_shutdown_answers_a_queued_http1_request_503_retry_after_close() -> None:
    server, release = slow_server()
    busy = connect(server.port)
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert server.started.wait(5)  # type: ignore[attr-defined]
    queued = connect(server.port)
    queued.sendall(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_for(lambda: tasks_in_flight(server) == 2)  # in the ring, behind /slow
    closer = close_in_background(server)
    status, headers, _ = read_response(queued)
    assert (status, headers.get("retry-after"), headers.get("connection")) == (503, "1", "close")
    release.set()
    assert read_response(busy)[0] == 200
    closer.join(10)
    busy.close()
    queued.close()


def raw_h2_frames(
    sock: socket.socket, seen: Callable[[list[Frame]], None] = lambda frames: None
) -> list[Frame]:
    """Every frame the server sends until it closes, parsed with hyperframe (the h2
    client state machine stops at a GOAWAY and would hide what follows it); `seen` is
    called with the frames so far each time more arrive."""
    sock.settimeout(10)
    data = b""
    frames: list[Frame] = []
    while chunk := sock.recv(65536):
        data += chunk
        while len(data) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(data[:9]))
            if len(data) < 9 + length:
                break
            frame.parse_body(memoryview(data[9 : 9 + length]))
            frames.append(frame)
            data = data[9 + length :]
        seen(frames)
    assert data == b"", "a truncated frame"
    return frames


def release_after_resets(release: threading.Event, count: int) -> Callable[[list[Frame]], None]:
    """For raw_h2_frames: set `release` once `count` streams were reset (the running
    stream may finish only after the others were refused)."""

    def seen(frames: list[Frame]) -> None:
        if sum(isinstance(f, RstStreamFrame) for f in frames) == count:
            release.set()

    return seen


def test_shutdown_sends_goaway_then_refused_stream_for_unstarted_streams() -> None:
    server, release = slow_server()
    client = RawH2(server.port)
    # In one write: the one worker parses all five streams (HTTP/2 input is parsed on
    # workers), then runs /slow while the other four wait in the ring.
    running = client.get("/slow", flush=False)
    waiting = [client.get(f"/w{i}", flush=False) for i in range(4)]
    client.flush()
    assert server.started.wait(5)  # type: ignore[attr-defined]
    assert wait_for(lambda: tasks_in_flight(server) == 5)  # four streams behind /slow
    client.events_until(settled)  # the server's SETTINGS and its ACK of ours
    closer = close_in_background(server)
    frames = raw_h2_frames(client.sock, release_after_resets(release, len(waiting)))
    closer.join(10)
    goaways = [i for i, f in enumerate(frames) if isinstance(f, GoAwayFrame)]
    assert len(goaways) == 1, frames
    goaway = frames[goaways[0]]
    assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert goaway.last_stream_id == running
    resets = [(i, f) for i, f in enumerate(frames) if isinstance(f, RstStreamFrame)]
    assert sorted(f.stream_id for _, f in resets) == waiting
    assert {f.error_code for _, f in resets} == {h2.errors.ErrorCodes.REFUSED_STREAM}
    # The GOAWAY comes first (RFC 9113 §8.7: the refused streams may be retried).
    assert all(i > goaways[0] for i, _ in resets)
    # The stream with a worker is still answered, after the GOAWAY.
    answered = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == running]
    assert b"".join(f.data for f in answered) == b"ok /slow"
    assert "END_STREAM" in answered[-1].flags


def test_shutdown_refuses_streams_still_waiting_for_room_in_the_ring() -> None:
    """max_pending_requests=2: of six streams, one runs, one is queued and four wait on
    the connection for room. At shutdown the five unstarted ones are refused, the
    GOAWAY names the running one, and it is still answered."""
    server, release = slow_server(max_pending_requests=2)
    client = RawH2(server.port)
    client.events_until(settled)
    running = client.get("/slow", flush=False)
    waiting = [client.get(f"/w{i}", flush=False) for i in range(5)]
    client.flush()
    assert server.started.wait(5)  # type: ignore[attr-defined]
    assert wait_for(lambda: tasks_in_flight(server) == 2)
    closer = close_in_background(server)
    frames = raw_h2_frames(client.sock, release_after_resets(release, len(waiting)))
    closer.join(10)
    (goaway,) = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaway.last_stream_id == running
    resets = [f for f in frames if isinstance(f, RstStreamFrame)]
    assert sorted(f.stream_id for f in resets) == waiting
    assert {f.error_code for f in resets} == {h2.errors.ErrorCodes.REFUSED_STREAM}
    answered = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == running]
    assert b"".join(f.data for f in answered) == b"ok /slow"


def settled(events: list[h2.events.Event]) -> bool:
    kinds = {type(e) for e in events}
    return {h2.events.RemoteSettingsChanged, h2.events.SettingsAcknowledged} <= kinds


def read_frames(sock: socket.socket, timeout: float = 10.0) -> list[tuple[int, bytes]]:
    """Every server frame until the connection closes; fails on anything that is
    not a well-formed, unmasked WebSocket frame."""
    data = LEFTOVER.pop(sock, b"") + read_until_close(sock, timeout)
    frames = []
    while data:
        assert len(data) >= 2, data
        first, second = data[0], data[1]
        assert first & 0x70 == 0 and second & 0x80 == 0, f"not a server frame: {data[:40]!r}"
        assert first & 0x0F in (0x1, 0x2, 0x8, 0x9, 0xA), f"bad opcode: {data[:40]!r}"
        length, start = second & 0x7F, 2
        if length == 126:
            length, start = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            length, start = struct.unpack("!Q", data[2:10])[0], 10
        assert len(data) >= start + length, f"truncated frame: {data[:40]!r}"
        frames.append((first & 0x0F, data[start : start + length]))
        data = data[start + length :]
    return frames


def test_shutdown_gives_websockets_nothing_but_frames_and_each_handler_one_close() -> None:
    events: dict[int, list[Event]] = {}
    lock = threading.Lock()

    def on_ws(ws: mummy.WebSocket, event: Event, message: mummy.Message | None) -> None:
        with lock:
            events.setdefault(id(ws), []).append(event)
        if event is Event.MESSAGE:
            time.sleep(0.1)  # work, for one worker: the other clients' input queues up
            ws.send("echo")

    server = mummy.Server(
        lambda r: r.upgrade_to_websocket(),
        websocket_handler=on_ws,
        workers=1,
        websocket_compression=False,
    )
    server.start(0, "127.0.0.1")
    socks = [raw_upgrade(server.port) for _ in range(4)]
    assert wait_for(lambda: len(events) == 4 and all(e == [Event.OPEN] for e in events.values()))
    for sock in socks:
        sock.sendall(client_frame(0x1, b"hello") * 3)
    # One connection's input with the worker, the three others' queued in the ring.
    assert wait_for(lambda: tasks_in_flight(server) == 4)
    closer = close_in_background(server)
    for sock in socks:
        frames = read_frames(sock)
        closes = [payload for opcode, payload in frames if opcode == 0x8]
        assert closes and struct.unpack("!H", closes[0][:2])[0] == 1001, frames
        sock.close()
    closer.join(10)
    with lock:
        for seen in events.values():
            assert seen[0] is Event.OPEN and seen[-1] is Event.CLOSE, seen
            assert seen.count(Event.CLOSE) == 1, seen


def test_shutdown_closes_a_queued_tls_handshake_without_encrypting(cert) -> None:  # noqa: F811
    release = threading.Event()
    started = threading.Event()

    def handler(request: mummy.Request) -> None:
        started.set()
        release.wait(5)
        request.respond(200, None, "ok")

    server = mummy.Server(handler, workers=1)
    server.start(0, "127.0.0.1", certfile=cert[0], keyfile=cert[1])
    context = ssl.create_default_context(cafile=cert[0])
    busy = context.wrap_socket(connect(server.port), server_hostname="localhost")
    busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert started.wait(5)
    # A second client's ClientHello: its handshake step waits for the busy worker.
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = connect(server.port)
    hello.sendall(outgoing.read())
    assert wait_for(lambda: tasks_in_flight(server) == 2)  # its handshake step is queued
    closer = close_in_background(server)
    assert read_until_close(hello) == b""  # closed, nothing sent for a handshake never made
    release.set()
    # The IO thread went on: the running request is still answered.
    assert read_response(busy)[0] == 200
    closer.join(10)
    hello.close()
    busy.close()


# --- 3. the WebSocket send bound is on the backlog, not on one message -------------


def test_a_message_larger_than_the_send_buffer_goes_out_to_a_reader() -> None:
    def echo(ws: mummy.WebSocket, event: Event, message: mummy.Message | None) -> None:
        if message is not None and message.kind in (MessageKind.TEXT, MessageKind.BINARY):
            ws.send(message.data, message.kind)

    server = mummy.Server(
        lambda r: r.upgrade_to_websocket(), echo, workers=4, max_message_len=16 << 20
    )
    server.start(0, "127.0.0.1")
    try:
        payload = os.urandom(2 << 20)  # twice the default send buffer, incompressible
        with ws_connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as client:
            for _ in range(3):
                client.send(payload)
                assert client.recv(timeout=20) == payload
    finally:
        server.close()


# --- 4. an upgrade whose connection is gone ---------------------------------------


def test_an_upgrade_after_the_client_left_leaves_nothing_behind(serve) -> None:
    made: list[weakref.ref] = []
    seen: list[Event] = []
    started = threading.Event()
    server: mummy.Server | None = None

    def handler(request: mummy.Request) -> None:
        if request.path != "/ws":
            request.upgrade_to_websocket()  # the next client, below
            return
        started.set()
        # Until the reset has reached the server: it has dropped the connection.
        assert server is not None
        (loop,) = server._loops
        if wait_for(lambda: loop.connection_count == 0):
            made.append(weakref.ref(request.upgrade_to_websocket()))

    server = serve(handler, websocket_handler=lambda ws, event, message: seen.append(event))
    sock = connect(server.port)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert started.wait(10)  # the request is with a worker
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset
    assert wait_for(lambda: bool(made)), "the server never dropped the reset connection"

    def collected() -> bool:
        gc.collect()
        return made[0]() is None

    assert wait_for(collected, 5), "the server still holds the WebSocket"
    assert seen == []  # never opened, so no events at all
    # The server is fine: the next client's WebSocket opens.
    with ws_connect(f"ws://127.0.0.1:{server.port}/"):
        assert wait_for(lambda: seen == [Event.OPEN])
