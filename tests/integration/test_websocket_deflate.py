"""permessage-deflate (RFC 7692) on the wire: which messages are compressed, and that each
compressed message stands alone when no context takeover was agreed. Raw sockets, so the
RSV1 bit and the compressed bytes themselves are checked, not only what a client decodes."""

import random
import socket
import struct
import threading
import zlib

import pytest

import mummy
from mummy import Event, MessageKind
from tests.integration.test_websocket import LEFTOVER, client_frame, raw_upgrade

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: appended before inflating


def upgrade(request: mummy.Request) -> None:
    request.upgrade_to_websocket()


def echo(ws: mummy.WebSocket, event: Event, message: mummy.Message | None) -> None:
    if message is not None and message.kind in (MessageKind.TEXT, MessageKind.BINARY):
        ws.send(message.data, message.kind)


class Frames:
    """Reads whole server frames off a raw socket: (rsv1, opcode, payload)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = LEFTOVER.pop(sock, b"")
        sock.settimeout(10)

    def _need(self, size: int) -> None:
        while len(self.data) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("the server closed the connection")
            self.data += chunk

    def next(self) -> tuple[bool, int, bytes]:
        self._need(2)
        first, length, start = self.data[0], self.data[1] & 0x7F, 2
        assert self.data[1] & 0x80 == 0, "a server frame must not be masked"
        assert first & 0x80, "mummy sends whole messages, one frame each"
        if length == 126:
            self._need(4)
            length, start = struct.unpack("!H", self.data[2:4])[0], 4
        elif length == 127:
            self._need(10)
            length, start = struct.unpack("!Q", self.data[2:10])[0], 10
        self._need(start + length)
        payload = self.data[start : start + length]
        self.data = self.data[start + length :]
        return bool(first & 0x40), first & 0x0F, payload


def client_frame_long(opcode: int, payload: bytes) -> bytes:
    """A masked client frame of any length (client_frame stops at 64 KiB)."""
    if len(payload) < 65536:
        return client_frame(opcode, payload)
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", len(payload)) + mask + masked


def inflate_alone(payload: bytes) -> bytes:
    """Inflate one message with a new zlib stream: it must need nothing sent before it."""
    return zlib.decompressobj(-15).decompress(payload + TAIL)


def text(i: int, size: int) -> str:
    """JSON-like text of `size` bytes, different for each i, that deflates ~5:1."""
    rng = random.Random(i)
    words = ["alpha", "beta", "gamma", "delta", "mummy", "server", "thread", "python"]
    lines, total = [], 0
    while total < size:
        name = " ".join(rng.choice(words) for _ in range(3))
        line = f'{{"id": {rng.randrange(10**6)}, "name": "{name}", "ok": true}}\n'
        lines.append(line)
        total += len(line)
    return "".join(lines)[:size]


def test_short_messages_go_out_plain_long_ones_compressed(serve) -> None:
    server = serve(upgrade, websocket_handler=echo)
    with raw_upgrade(server.port, OFFER) as sock:
        frames = Frames(sock)
        for size, compressed in ((64, False), (1023, False), (1024, True), (16384, True)):
            sent = text(size, size)
            sock.sendall(client_frame(0x1, sent.encode()))
            rsv1, opcode, payload = frames.next()
            assert opcode == 0x1 and rsv1 is compressed, size
            if compressed:
                assert inflate_alone(payload) == sent.encode()
                assert len(payload) < size // 3  # it is really compressed
            else:
                assert payload == sent.encode()


def test_each_compressed_message_stands_alone(serve) -> None:
    """server_no_context_takeover (RFC 7692 §7.1.1.1): every message inflates with a new
    stream, and the same message compresses to the same bytes each time (the thread's
    compressor carried nothing over from the one before)."""
    server = serve(upgrade, websocket_handler=echo, workers=1)
    with raw_upgrade(server.port, OFFER) as sock:
        frames = Frames(sock)
        replies = []
        for message in (text(1, 4096), text(2, 4096), text(1, 4096), text(3, 65_000)):
            sock.sendall(client_frame_long(0x1, message.encode()))
            rsv1, _, payload = frames.next()
            assert rsv1 and inflate_alone(payload) == message.encode()
            replies.append(payload)
        assert replies[0] == replies[2]


def test_connections_on_many_threads_get_their_own_messages(serve) -> None:
    """Workers share their compressors between connections, one message at a time: every
    reply must inflate alone to that connection's own message."""
    server = serve(upgrade, websocket_handler=echo, workers=4)
    failures: list[str] = []

    def client(n: int) -> None:
        try:
            with raw_upgrade(server.port, OFFER) as sock:
                frames = Frames(sock)
                for i in range(30):
                    message = text(n * 1000 + i, 2048 + 97 * i).encode()
                    sock.sendall(client_frame(0x2, message))
                    rsv1, opcode, payload = frames.next()
                    if not (rsv1 and opcode == 0x2 and inflate_alone(payload) == message):
                        failures.append(f"client {n}, message {i}")
        except Exception as exc:  # reported below, with the others
            failures.append(f"client {n}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


@pytest.mark.parametrize(("min_size", "compressed"), [(0, True), (1 << 30, False)])
def test_the_threshold_is_an_option(serve, min_size, compressed) -> None:
    server = serve(upgrade, websocket_handler=echo, websocket_compress_min_size=min_size)
    with raw_upgrade(server.port, OFFER) as sock:
        frames = Frames(sock)
        for message in (b"hi", text(0, 50_000).encode()):
            sock.sendall(client_frame(0x2, message))
            rsv1, _, payload = frames.next()
            assert rsv1 is compressed
            assert (inflate_alone(payload) if compressed else payload) == message
        sock.sendall(client_frame(0x2, b""))
        assert frames.next() == (False, 0x2, b"")  # an empty message is never deflated


def test_context_takeover_keeps_its_window_and_the_threshold(serve) -> None:
    server = serve(upgrade, websocket_handler=echo, websocket_compression="context_takeover")
    with raw_upgrade(server.port, OFFER) as sock:
        frames = Frames(sock)
        inflate = zlib.decompressobj(-15)  # one stream for the connection's messages
        sizes = []
        for message in (b"short", text(5, 8192).encode(), b"short", text(5, 8192).encode()):
            sock.sendall(client_frame(0x2, message))
            rsv1, _, payload = frames.next()
            assert rsv1 is (len(message) >= 1024)
            assert (inflate.decompress(payload + TAIL) if rsv1 else payload) == message
            sizes.append(len(payload))
        assert sizes[3] < sizes[1] // 4  # the second copy refers back to the first


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_a_bad_threshold_is_a_config_error(value) -> None:
    with pytest.raises(mummy.MummyError, match="websocket_compress_min_size"):
        mummy.Server(upgrade, websocket_compress_min_size=value)
