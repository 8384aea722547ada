"""WebSockets over real sockets, with the `websockets` client and hand-made frames."""

import base64
import contextlib
import os
import socket
import struct
import threading
import weakref
from collections import defaultdict

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

import mummy
from mummy import Event, MessageKind
from tests.client import connect, read_response
from tests.servers import wait_for

KEY = base64.b64encode(b"0123456789abcdef").decode()


class Recorder:
    """A WebSocket handler that echoes and records every event per connection."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[mummy.WebSocket, list[tuple[Event, object]]] = defaultdict(list)
        self.closed = threading.Event()

    def __call__(self, ws: mummy.WebSocket, event: Event, message: mummy.Message | None) -> None:
        with self.lock:
            self.events[ws].append((event, message.data if message else ws.close_code))
        if (
            event is Event.MESSAGE
            and message is not None
            and message.kind in (MessageKind.TEXT, MessageKind.BINARY)
        ):
            if message.data == "close-me":
                ws.close(4000, "as asked")
            else:
                ws.send(message.data, message.kind)
        if event is Event.CLOSE:
            self.closed.set()


def upgrade(request: mummy.Request) -> None:
    if request.path == "/ws":
        ws = request.upgrade_to_websocket()
        ws.send("Hello world from WebSocket!")
    else:
        request.respond(200, {"Content-Type": "text/plain"}, "page")


def url(server: mummy.Server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def test_echo_text_and_binary(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    with ws_connect(url(server)) as client:
        assert client.recv(timeout=10) == "Hello world from WebSocket!"
        client.send("héllo")
        assert client.recv(timeout=10) == "héllo"
        client.send(b"\x00\x01\xff")
        assert client.recv(timeout=10) == b"\x00\x01\xff"
        big = "x" * 60_000
        client.send(big)
        assert client.recv(timeout=10) == big
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    kinds = [e for e, _ in events]
    assert kinds[0] is Event.OPEN and kinds[-1] is Event.CLOSE and kinds.count(Event.CLOSE) == 1
    assert events[-1][1] == 1000  # the client closed normally


def test_per_connection_order_under_load(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder, workers=16)
    clients, messages = 40, 100

    def client(i: int) -> None:
        with ws_connect(url(server)) as ws:
            ws.recv(timeout=30)
            for n in range(messages):
                ws.send(f"{i}:{n}")
            for n in range(messages):
                assert ws.recv(timeout=30) == f"{i}:{n}"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert wait_for(
        lambda: sum(e[-1][0] is Event.CLOSE for e in recorder.events.values()) == clients
    )
    assert len(recorder.events) == clients
    for events in recorder.events.values():
        assert events[0][0] is Event.OPEN
        assert [e for e, _ in events].count(Event.CLOSE) == 1 and events[-1][0] is Event.CLOSE
        texts = [d for e, d in events if e is Event.MESSAGE]
        prefix = texts[0].split(":")[0]
        assert texts == [f"{prefix}:{n}" for n in range(messages)]


def test_ping_gets_an_automatic_pong_and_the_handler_sees_it(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    with ws_connect(url(server)) as client:
        client.recv(timeout=10)
        assert client.ping(b"are you there").wait(10)
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    assert (Event.MESSAGE, b"are you there") in events


def test_server_close_and_close_code(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    with ws_connect(url(server)) as client:
        client.recv(timeout=10)
        client.send("close-me")
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4000
        assert info.value.rcvd.reason == "as asked"
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    assert events[-1] == (Event.CLOSE, 4000)


def test_message_too_big_closes_with_1009(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder, max_message_len=1000)
    with ws_connect(url(server), max_size=None) as client:
        client.recv(timeout=10)
        client.send("y" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    assert [e for e, _ in events][-2:] == [Event.ERROR, Event.CLOSE]


# Frames that arrived together with the 101 response, per raw client socket.
LEFTOVER: "weakref.WeakKeyDictionary[socket.socket, bytes]" = weakref.WeakKeyDictionary()


def raw_upgrade(port: int, extra: str = "") -> socket.socket:
    sock = connect(port)
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" not in head  # a different key than the RFC's
    LEFTOVER[sock] = rest
    return sock


def client_frame(opcode: int, payload: bytes, masked: bool = True, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    else:
        head += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_close_code(sock: socket.socket) -> int:
    """Read server frames until a Close frame; return its status code."""
    data = LEFTOVER.pop(sock, b"")
    sock.settimeout(10)
    while True:
        while len(data) >= 2:
            opcode, length = data[0] & 0x0F, data[1] & 0x7F
            start = 2
            if length == 126:
                length, start = struct.unpack("!H", data[2:4])[0], 4
            if len(data) < start + length:
                break
            payload, data = data[start : start + length], data[start + length :]
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if payload else 1005
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("closed without a Close frame")
        data += chunk


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([client_frame(0x1, b"\xff\xfe")], 1007),  # invalid UTF-8
        ([client_frame(0x1, b"hi", masked=False)], 1002),  # unmasked client frame
        ([client_frame(0x3, b"")], 1002),  # reserved opcode
        ([client_frame(0x0, b"x")], 1002),  # continuation with nothing to continue
        ([client_frame(0x9, b"x" * 126)], 1002),  # control frame too long
    ],
)
def test_protocol_errors_fail_the_connection(serve, frames, code) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    sock = raw_upgrade(server.port)
    with sock:
        sock.sendall(b"".join(frames))
        assert read_close_code(sock) == code
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    assert [e for e, _ in events][-2:] == [Event.ERROR, Event.CLOSE]


def test_fragments_with_interleaved_ping(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    with raw_upgrade(server.port) as sock:
        sock.sendall(
            client_frame(0x1, b"hel", fin=False)
            + client_frame(0x9, b"p")
            + client_frame(0x0, b"lo", fin=False)
            + client_frame(0x0, b"!", fin=True)
            + client_frame(0x8, struct.pack("!H", 1000))
        )
        assert read_close_code(sock) == 1000
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    messages = [d for e, d in events if e is Event.MESSAGE]
    assert messages == [b"p", "hello!"]


def test_abrupt_disconnect_gives_error_then_close_1006(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    sock = raw_upgrade(server.port)
    sock.close()
    assert recorder.closed.wait(10)
    (events,) = recorder.events.values()
    assert events[0][0] is Event.OPEN
    assert events[-2:] == [(Event.ERROR, 1006), (Event.CLOSE, 1006)]


def test_broadcast_from_a_background_thread(serve) -> None:
    clients: set[mummy.WebSocket] = set()
    lock = threading.Lock()

    def handler(ws: mummy.WebSocket, event: Event, message: mummy.Message | None) -> None:
        with lock:
            if event is Event.OPEN:
                clients.add(ws)
            elif event is Event.CLOSE:
                clients.discard(ws)

    server = serve(upgrade, websocket_handler=handler)

    def broadcast() -> None:
        with lock:
            for ws in clients:
                ws.send("news")

    with contextlib.ExitStack() as stack:
        conns = [stack.enter_context(ws_connect(url(server))) for _ in range(5)]
        for c in conns:
            c.recv(timeout=10)
        assert wait_for(lambda: len(clients) == 5)
        t = threading.Thread(target=broadcast)
        t.start()
        t.join()
        for c in conns:
            assert c.recv(timeout=10) == "news"

    assert wait_for(lambda: not clients)


def test_permessage_deflate_without_context_takeover(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder)
    with ws_connect(url(server)) as client:  # offers permessage-deflate by default
        extensions = client.response.headers["Sec-WebSocket-Extensions"]
        assert "permessage-deflate" in extensions
        assert "server_no_context_takeover" in extensions
        assert "client_no_context_takeover" in extensions
        client.recv(timeout=10)
        text = "compress me " * 5000
        client.send(text)
        assert client.recv(timeout=10) == text


def test_websocket_compression_can_be_turned_off(serve) -> None:
    server = serve(upgrade, websocket_handler=Recorder(), websocket_compression=False)
    with ws_connect(url(server)) as client:
        assert "Sec-WebSocket-Extensions" not in client.response.headers
        assert client.recv(timeout=10) == "Hello world from WebSocket!"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400),
        (
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 8\r\n",
            426,
        ),
        (f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n", 400),
    ],
)
def test_bad_handshakes(serve, extra, status) -> None:
    server = serve(upgrade, websocket_handler=Recorder())
    with connect(server.port) as sock:
        sock.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        got, headers, _ = read_response(sock)
    assert got == status
    if status == 426:
        assert headers["sec-websocket-version"] == "13"


def test_ping_interval_closes_peers_that_do_not_answer(serve) -> None:
    recorder = Recorder()
    server = serve(upgrade, websocket_handler=recorder, websocket_ping_interval=0.2)
    with raw_upgrade(server.port) as sock:
        sock.settimeout(10)
        received = LEFTOVER.pop(sock, b"")
        # Read (and never answer) until the server drops us.
        while chunk := sock.recv(4096):
            received += chunk
    assert b"\x89\x00" in received  # the server pinged
    assert recorder.closed.wait(10)


def test_server_close_says_going_away(serve) -> None:
    recorder = Recorder()
    server = mummy.Server(upgrade, websocket_handler=recorder, workers=4)
    server.start(0, "127.0.0.1")
    with ws_connect(url(server)) as client:
        client.recv(timeout=10)
        closer = threading.Thread(target=server.close)
        closer.start()
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        closer.join(15)
    assert recorder.closed.wait(10)


def test_slow_reader_is_bounded_by_the_send_buffer(serve) -> None:
    recorder = Recorder()
    sent = []

    def handler(ws: mummy.WebSocket, event: Event, message: mummy.Message | None) -> None:
        recorder(ws, event, None) if event is not Event.MESSAGE else None
        if event is Event.OPEN:
            for _ in range(2000):  # 2000 x 10 KB = 20 MB, far past the 256 KB bound
                ws.send(b"z" * 10_000, MessageKind.BINARY)
                sent.append(1)

    server = serve(
        upgrade,
        websocket_handler=handler,
        websocket_send_buffer_len=256 * 1024,
        websocket_compression=False,
    )
    with raw_upgrade(server.port) as sock:
        assert wait_for(lambda: len(sent) == 2000, 30)
        # The server gave up on us with 1008 instead of buffering 20 MB.
        assert read_close_code(sock) == 1008
