"""Fuzz target: the WebSocket frame path (mummy.core.wsengine.WebSocketEngine.receive, wsproto).

A WebSocket is opened as the server opens one (open_websocket on an upgrade request,
then WebSocketEngine(...) with a post function standing in for the IO thread's mailbox);
then the input is fed to `receive` in seeded pieces, as a worker would, with the
handler's own `send` and `close` calls seeded in between. Feeding stops when
`receive` says to drop the connection, as the server does.

Input: byte 0 picks the compression (offered by the client or not, and the server's
websocket_compression), byte 1 max_message_len, byte 2 seeds the pieces and the
calls; the rest is what the client sent after the handshake (masked frames).

A failure is an exception out of `receive`, `send` or `close`, an event that is not
what the handler API promises (TEXT with str data, a message over max_message_len),
or a dropped connection without a close code.

Run through ci/fuzz.py, or:
    .venv-gil/bin/python fuzz/websocket_frames.py fuzz/corpus/websocket_frames
"""

import random
import sys
from dataclasses import dataclass, field

import atheris

with atheris.instrument_imports():
    from mummy.core.messages import Message as LoopMessage
    from mummy.core.messages import WebSocketClosing, WebSocketFrame
    from mummy.core.wsengine import Event, Message, MessageKind, WebSocketEngine, open_websocket
    from mummy.headers import Headers

COMPRESSION: list[bool | str] = [False, True, "context_takeover"]
MAX_MESSAGE_LEN = [16, 125, 1 << 16]
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@dataclass
class UpgradeRequest:
    """What open_websocket reads from a mummy.Request."""

    headers: Headers
    method: str = "GET"
    http_version: str = "HTTP/1.1"
    uri: str = "/ws"
    path: str = "/ws"
    remote_address: str = "127.0.0.1"
    posted: list[LoopMessage] = field(default_factory=list)


def open_socket(
    offer_deflate: bool, compression: bool | str
) -> tuple[WebSocketEngine, UpgradeRequest]:
    pairs = [
        ("Host", "x"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    if offer_deflate:
        pairs.append(("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"))
    request = UpgradeRequest(Headers(pairs))
    response, proto = open_websocket(request, compression, 1 << 16, 0)  # type: ignore[arg-type]
    assert response.startswith(b"HTTP/1.1 101 ")
    ws = WebSocketEngine(proto, object(), request.posted.append, 1 << 20)  # type: ignore[arg-type]
    return ws, request


def check_events(events: list[tuple[Event, Message | None]], max_message_len: int) -> None:
    for event, message in events:
        if event is not Event.MESSAGE:
            assert event is Event.ERROR and message is None, (event, message)
            continue
        assert message is not None
        if message.kind is MessageKind.TEXT:
            assert isinstance(message.data, str)
            assert len(message.data.encode()) <= max_message_len  # bytes, not characters
        else:
            assert isinstance(message.data, bytes), message
            if message.kind is MessageKind.BINARY:
                assert len(message.data) <= max_message_len
            else:
                assert len(message.data) <= 125  # RFC 6455 §5.5: control frames


def test_one_input(data: bytes) -> None:
    if len(data) < 3:
        return
    offer_deflate = bool(data[0] & 1)
    compression = COMPRESSION[(data[0] >> 1) % len(COMPRESSION)]
    max_message_len = MAX_MESSAGE_LEN[data[1] % len(MAX_MESSAGE_LEN)]
    rng = random.Random(data[2])
    stream = data[3:]
    ws, request = open_socket(offer_deflate, compression)
    pos = 0
    while pos < len(stream):
        size = rng.choice((1, 2, 7, 64, len(stream)))
        action = rng.randrange(16)
        if action == 0:
            ws.send("from the handler")
        elif action == 1:
            ws.send(b"\x00\x01", MessageKind.BINARY)
        elif action == 2:
            ws.close(rng.choice((1000, 1001, 4000)), "bye")
        events, drop = ws.receive(stream[pos : pos + size], max_message_len)
        ws.fail_pending()
        pos += size
        check_events(events, max_message_len)
        if drop:
            assert ws.close_code is not None, "dropped without a close code"
            break
    check_events(ws.gone(), max_message_len)
    assert ws.close_code is not None
    for message in request.posted:
        assert isinstance(message, (WebSocketFrame, WebSocketClosing)), message
        assert isinstance(message.frame, bytes)
        assert not isinstance(message, WebSocketFrame) or message.engine is ws


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
