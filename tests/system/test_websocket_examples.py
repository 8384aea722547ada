"""The WebSocket examples, each run as its own process on a free port, checked with raw
HTTP and the `websockets` client. (advanced_websockets, which needs Redis, is in
test_service_examples.py.)"""

import os
import signal
import sys
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from tests.client import exchange, status_of
from tests.servers import ServerProcess


class Example(ServerProcess):
    """An example script running in a subprocess on a free port (in $PORT, and in place
    of "{port}" in `args`), with a raw HTTP and a WebSocket client for it."""

    def __init__(self, name: str, *args: str, **env: str) -> None:
        super().__init__([sys.executable, f"examples/{name}.py", *args], env={**os.environ, **env})

    def get(self, target: str, method: str = "GET", body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        response = exchange(self.port, f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return status_of(response), response.partition(b"\r\n\r\n")[2]

    def ws(self, path: str) -> ClientConnection:
        return ws_connect(f"ws://127.0.0.1:{self.port}{path}", open_timeout=30, max_size=None)

    def stop_cleanly(self) -> str:
        """SIGTERM; the example must exit 0. Returns what it printed."""
        assert self.stop(signal.SIGTERM) == 0, self.output
        return self.output


@pytest.fixture
def example() -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def start(name: str, *args: str, **env: str) -> Example:
        started.append(Example(name, *args, **env))
        return started[-1]

    yield start
    for ex in started:
        ex.kill()


def recv_until(ws: ClientConnection, wanted: str | bytes, limit: int = 100) -> list[str | bytes]:
    """Messages received up to and including `wanted` (raises TimeoutError if it never comes)."""
    seen: list[str | bytes] = []
    while len(seen) < limit:
        seen.append(ws.recv(timeout=30))
        if seen[-1] == wanted:
            return seen
    raise AssertionError(f"{wanted!r} not among {seen!r}")


def test_basic_websockets(example) -> None:
    ex = example("basic_websockets")
    status, page = ex.get("/")
    assert status == 200
    assert b'new WebSocket("ws://" + location.host + "/ws")' in page
    assert ex.get("/nope")[0] == 404
    assert ex.get("/", "POST")[0] == 405
    with ex.ws("/ws") as client:
        assert client.recv(timeout=30) == "Hello world from WebSocket!"
        client.send("hi there")
        client.send(b"\x01\x02")
        assert client.ping(b"still there?").wait(30)  # answered after both messages
    output = ex.stop_cleanly()
    assert "TEXT: 'hi there'" in output
    assert "BINARY: b'\\x01\\x02'" in output


def test_chat_broadcasts_to_every_client(example) -> None:
    ex = example("chat")
    status, page = ex.get("/")
    assert status == 200 and b'id="message"' in page and b'"/chat"' in page
    with ex.ws("/chat") as alice, ex.ws("/chat") as bob:
        assert alice.recv(timeout=30) == "Hello from WebSocket server!"
        assert bob.recv(timeout=30) == "Hello from WebSocket server!"
        # Hearing its own message back proves a client is in the set (OPEN came first).
        alice.send("alice is here")
        recv_until(alice, "alice is here")
        bob.send("bob is here")
        recv_until(bob, "bob is here")
        alice.send("hello everyone")
        recv_until(alice, "hello everyone")
        recv_until(bob, "hello everyone")
        bob.send(b"\x00binary\xff")
        recv_until(alice, b"\x00binary\xff")
        with ex.ws("/chat") as carol:
            carol.recv(timeout=30)
            carol.send("carol is here")
            recv_until(carol, "carol is here")
            recv_until(bob, "carol is here")
        # Carol is gone: sending to everyone still works for those left.
        alice.send("bye carol")
        recv_until(bob, "bye carol")
    ex.stop_cleanly()


def test_autobahn_echo_server(example) -> None:
    ex = example("autobahn_echo", "{port}")  # the port as its argument, as ci/autobahn.py does
    with ex.ws("/") as client:
        client.send("héllo")
        assert client.recv(timeout=30) == "héllo"
        client.send(b"\x00\xff")
        assert client.recv(timeout=30) == b"\x00\xff"
        # Past both default limits (64 KiB messages, 1 MiB send buffer).
        big = bytes(range(256)) * (4 << 12)
        client.send(big)
        assert client.recv(timeout=60) == big
    assert ex.get("/")[0] == 200
    ex.stop_cleanly()
