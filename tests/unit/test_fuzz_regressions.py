"""Regressions from fuzzing (fuzz/, ci/fuzz.py) of the WebSocket frame path and the
multipart decoder: each test is a bug that was found and fixed (a deflate bomb, a Pong
after our Close, text limits counted in characters, cubic multipart parameters).
Parser regressions live in test_http1_properties.py."""

import struct
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from mummy import Event, MessageKind
from mummy.core.wsengine import WebSocketEngine, open_websocket
from mummy.headers import Headers
from mummy.multipart import MultipartError, decode_multipart
from tests.unit.growth import assert_linear


@dataclass
class UpgradeRequest:
    """What open_websocket reads from a mummy.Request."""

    headers: Headers
    method: str = "GET"
    http_version: str = "HTTP/1.1"
    uri: str = "/ws"
    path: str = "/ws"
    remote_address: str = "127.0.0.1"
    posted: list[object] = field(default_factory=list)


def upgrade_request(offer_deflate: bool = False) -> UpgradeRequest:
    """A valid WebSocket upgrade request, offering permessage-deflate or not."""
    pairs = [
        ("Host", "x"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    if offer_deflate:
        pairs.append(("Sec-WebSocket-Extensions", "permessage-deflate"))
    return UpgradeRequest(Headers(pairs))


def open_socket(offer_deflate: bool = False) -> WebSocketEngine:
    """A server-side WebSocket after the handshake, as Request.upgrade_to_websocket
    makes it; frames it sends are collected in request.posted."""
    request = upgrade_request(offer_deflate)
    response, proto = open_websocket(request, True, 1 << 16, 0)  # type: ignore[arg-type]
    assert (b"permessage-deflate" in response) is offer_deflate
    return WebSocketEngine(proto, object(), request.posted.append, 1 << 20)  # type: ignore[arg-type]


def frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """One final, masked client frame (RFC 6455 §5.2)."""
    mask = b"\x37\xfa\x21\x3d"
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 1 << 16:
        length = bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        length = bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return bytes([0x80 | (0x40 if rsv1 else 0) | opcode]) + length + mask + masked


def test_frames_round_trip_through_receive() -> None:
    # The helpers above drive the real receive path (a guard for the regressions below).
    ws = open_socket()
    events, drop = ws.receive(frame(1, b"hi") + frame(9, b"p") + frame(2, b"\x00"), 1 << 16)
    assert [(e, m.kind, m.data) for e, m in events if m] == [
        (Event.MESSAGE, MessageKind.TEXT, "hi"),
        (Event.MESSAGE, MessageKind.PING, b"p"),
        (Event.MESSAGE, MessageKind.BINARY, b"\x00"),
    ]
    assert not drop


def test_ping_after_our_close() -> None:
    ws = open_socket()
    ws.close(1000, "bye")
    events, drop = ws.receive(frame(1, b"in flight") + frame(9, b"ping"), 1 << 16)
    assert (Event.MESSAGE, "in flight") in [(e, m.data) for e, m in events if m]
    assert not drop  # still waiting for the peer's Close


def test_text_limit_counts_bytes() -> None:
    ws = open_socket()
    events, drop = ws.receive(frame(1, ("\u20ac" * 6).encode()), 16)  # 6 chars, 18 bytes
    assert events == [(Event.ERROR, None)] and drop and ws.close_code == 1009


def test_compressed_message_is_not_inflated_past_the_limit() -> None:
    ws = open_socket(offer_deflate=True)
    deflate = zlib.compressobj(wbits=-15)
    payload = deflate.compress(bytes(64 << 20)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    data = frame(2, payload[:-4], rsv1=True)  # RFC 7692 §7.2.1: without the 00 00 ff ff tail
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        events, drop = ws.receive(data, 1 << 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert events == [(Event.ERROR, None)] and drop and ws.close_code == 1009
    # Inflating may overshoot the 64 KiB limit by a buffer or two, not by 1000x.
    assert peak < 16 << 20, f"{peak >> 20} MiB allocated while inflating"


class FormRequest:
    def __init__(self, content_type: str, body: bytes) -> None:
        self.headers = Headers([("Content-Type", content_type)])
        self.body = body


def test_multipart_parameters_with_spaces_decode() -> None:
    body = b'--b\r\nContent-Disposition: form-data;  name = "a b" ;\r\n\r\nv\r\n--b--'
    (entry,) = decode_multipart(FormRequest("multipart/form-data; boundary = b ", body))
    assert (entry.name, bytes(entry.data)) == ("a b", b"v")
    with pytest.raises(MultipartError):
        decode_multipart(FormRequest('multipart/form-data; boundary=   "', b""))


def parameters_case(where: str) -> Callable[[int], Callable[[], object]]:
    """A parameter "=", n spaces, then an unclosed quote, in the Content-Type or in a
    part's Content-Disposition: what took cubic time (5000 spaces: minutes)."""

    def case(n: int) -> Callable[[], object]:
        value = "=" + " " * n + '"'
        if where == "content-type":
            request = FormRequest("multipart/form-data; boundary" + value, b"")
        else:
            disposition = ("form-data; name" + value).encode()
            body = b"--b\r\nContent-Disposition: " + disposition + b"\r\n\r\nv\r\n--b--"
            request = FormRequest("multipart/form-data; boundary=b", body)

        def run() -> None:
            try:
                decode_multipart(request)
            except MultipartError:
                pass

        return run

    return case


@pytest.mark.parametrize("where", ["content-type", "content-disposition"])
def test_multipart_parameters_backtracking_is_bounded(where: str) -> None:
    assert_linear(parameters_case(where), 500, 5000)
