"""Several IO loops in one server (`io_threads`): connections spread over them (one
SO_REUSEPORT socket per loop for a TCP port, one EPOLLEXCLUSIVE socket for a Unix
socket or an inherited fd), every protocol served on every loop, each loop's share
of max_connections, close() across the loops and its last-request grace, and one
failing loop stopping the whole server.

Which loop holds a connection is read from `loop.connection_count` (open now) and
`loop.opened` (opened so far, by protocol): the IO threads own them, and reading
them from the test is a benign race that a wait_for loop absorbs."""

import asyncio
import contextlib
import logging
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

import mummy
from mummy.core.loop import EventLoop
from tests.client import connect, read_response, read_until_close
from tests.integration.test_concurrency import run_threads
from tests.servers import HANG_S, serving, tasks_in_flight, wait_for

GET = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"


def app(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, f"{request.http_version} {request.path}")


def echo(ws: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None) -> None:
    if event is mummy.Event.MESSAGE and message is not None:
        ws.send(message.data, message.kind)


def open_per_loop(server: mummy.Server) -> list[int]:
    return [loop.connection_count for loop in server._loops]


def opened_per_loop(server: mummy.Server, protocol: str) -> list[int]:
    return [loop.opened.get(protocol, 0) for loop in server._loops]


def loop_that_accepted(server: mummy.Server, before: list[int]) -> int:
    """The index of the loop holding one more connection than `before` said."""
    assert wait_for(lambda: sum(open_per_loop(server)) == sum(before) + 1), open_per_loop(server)
    return next(i for i, n in enumerate(open_per_loop(server)) if n > before[i])


def served(sock: socket.socket, path: str) -> dict[str, str]:
    """One keep-alive request on `sock`, checked; the response's headers."""
    sock.sendall(GET % path.encode())
    status, headers, body = read_response(sock)
    assert (status, body) == (200, f"HTTP/1.1 /{path}".encode())
    return headers


@contextlib.contextmanager
def shared_listener(
    kind: str, tmp_path: Path
) -> Iterator[tuple[dict, socket.AddressFamily, object]]:
    """(Server.start's options, the family, the address to connect to) for a Unix
    socket or an inherited listening fd: the kinds of listener all loops share."""
    if kind == "uds":
        path = str(tmp_path / "mummy.sock")
        yield {"uds": path}, socket.AF_UNIX, path
        return
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = listener.getsockname()
    yield {"fd": listener.detach()}, socket.AF_INET, address


def dial(family: socket.AddressFamily, address: object) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(HANG_S)
    sock.connect(address)
    return sock


def test_tcp_connections_spread_over_the_reuse_port_sockets(serve) -> None:
    server = serve(app, workers=4, io_threads=2)
    assert [loop.index for loop in server._loops] == [0, 1]
    with contextlib.ExitStack() as held:
        for i in range(40):
            sock = held.enter_context(connect(server.port))
            assert served(sock, f"c{i}").get("connection") != "close"
        # The kernel hashes each connection's addresses to one of the two sockets:
        # all 40 on one loop has a chance of 2**-39.
        assert wait_for(lambda: sum(open_per_loop(server)) == 40), open_per_loop(server)
        assert all(count > 0 for count in open_per_loop(server)), open_per_loop(server)


@pytest.mark.parametrize("kind", ["uds", "fd"])
def test_a_burst_on_a_shared_listener_is_served(kind: str, tmp_path: Path) -> None:
    # How the burst spreads over the loops is the kernel's doing (EPOLLEXCLUSIVE wakes
    # an idle loop first): the free-threaded build has put all 40 on one loop at
    # times, so only the serving is asserted; the spread is the next test's.
    clients = 40
    with (
        shared_listener(kind, tmp_path) as (where, family, address),
        serving(mummy.Server(app, workers=4, io_threads=2), **where) as server,
    ):
        socks: list[socket.socket] = []
        barrier = threading.Barrier(clients)

        def client(i: int) -> None:
            barrier.wait(HANG_S)
            sock = dial(family, address)
            socks.append(sock)
            assert served(sock, f"burst{i}").get("connection") != "close"

        try:
            assert run_threads(clients, client) == []
            assert wait_for(lambda: sum(open_per_loop(server)) == clients)
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("kind", ["uds", "fd"])
def test_every_loop_accepts_from_a_shared_listener(kind: str, tmp_path: Path) -> None:
    # max_connections=2 is one per loop: once a loop holds one connection it stops
    # waiting on the socket, so the next connection can only go to the other loop.
    with shared_listener(kind, tmp_path) as (where, family, address):
        server = mummy.Server(app, workers=2, io_threads=2, max_connections=2)
        with serving(server, **where), dial(family, address) as first:
            served(first, "first")
            with dial(family, address) as second:
                served(second, "second")
                assert open_per_loop(server) == [1, 1]


def test_max_connections_is_shared_out_over_the_loops(serve) -> None:
    server = serve(app, workers=4, io_threads=2, max_connections=4)
    # 24 connections: fewer than two of them hashed to one of the sockets has a
    # chance of about 3e-6.
    waiting = [connect(server.port) for _ in range(24)]
    try:
        for i, sock in enumerate(waiting):
            sock.sendall(GET % b"k%d" % i)

        def answered() -> list[socket.socket]:
            return select.select(waiting, [], [], 0)[0] if waiting else []

        assert wait_for(lambda: len(answered()) >= 4), open_per_loop(server)
        # Two accepted by each loop, the other 20 still in the kernel's backlogs.
        assert open_per_loop(server) == [2, 2]
        assert len(answered()) == 4
        served_count = 0
        while waiting:
            assert wait_for(answered), open_per_loop(server)
            for sock in answered():
                status, _, _ = read_response(sock)
                assert status == 200
                waiting.remove(sock)
                sock.close()  # leaving makes room for one from the backlog
                served_count += 1
            assert all(count <= 2 for count in open_per_loop(server)), open_per_loop(server)
        assert served_count == 24
    finally:
        for sock in waiting:
            sock.close()


def test_http2_on_every_loop(serve) -> None:
    server = serve(app, workers=8, io_threads=2)
    base = f"http://127.0.0.1:{server.port}"

    def client(i: int) -> None:
        for c in range(2):  # a new client, a new connection
            with httpx.Client(http2=True, http1=False, timeout=HANG_S) as http:
                for n in range(5):
                    response = http.get(f"{base}/h{i}-{c}-{n}")
                    assert response.http_version == "HTTP/2"
                    assert response.text == f"HTTP/2 /h{i}-{c}-{n}"

    assert run_threads(10, client) == []
    assert sum(opened_per_loop(server, "http2")) == 20
    assert all(opened_per_loop(server, "http2")), opened_per_loop(server, "http2")


def test_websocket_echo_on_every_loop(serve) -> None:
    server = serve(
        lambda request: request.upgrade_to_websocket(),
        websocket_handler=echo,
        workers=8,
        io_threads=2,
    )

    async def client(i: int) -> None:
        async with ws_connect(f"ws://127.0.0.1:{server.port}/", open_timeout=HANG_S) as ws:
            for n in range(5):
                await ws.send(f"{i}-{n}")
                assert await asyncio.wait_for(ws.recv(), HANG_S) == f"{i}-{n}"
            await ws.send(b"\x00\x01binary")
            assert await asyncio.wait_for(ws.recv(), HANG_S) == b"\x00\x01binary"

    async def clients() -> None:
        await asyncio.gather(*(client(i) for i in range(20)))

    asyncio.run(clients())
    assert sum(opened_per_loop(server, "websocket")) == 20
    assert all(opened_per_loop(server, "websocket")), opened_per_loop(server, "websocket")


def test_close_answers_what_every_loop_received_and_leaves_no_connection(serve) -> None:
    gate = threading.Event()

    def handler(request: mummy.Request) -> None:
        gate.wait(HANG_S)
        request.respond(200, None, request.path)

    # One worker: one request runs, the others wait in the shared queue.
    server = serve(handler, workers=1, io_threads=2)
    socks: list[socket.socket] = []
    try:
        while not all(loop.ring.in_flight for loop in server._loops):
            assert len(socks) < 32, "every connection went to one loop"
            sock = connect(server.port)
            socks.append(sock)
            sock.sendall(GET % b"r%d" % (len(socks) - 1))
            assert wait_for(lambda: tasks_in_flight(server) == len(socks))
        closer = threading.Thread(target=server.close, kwargs={"timeout": 10})
        closer.start()
        assert wait_for(lambda: all(loop.closing for loop in server._loops))
        with pytest.raises(OSError):
            connect(server.port, timeout=2).close()  # no longer accepting
        gate.set()
        for i, sock in enumerate(socks):
            status, headers, body = read_response(sock)
            assert (status, body, headers.get("connection")) == (200, b"/r%d" % i, "close")
            assert read_until_close(sock) == b""
        closer.join(HANG_S)
        assert not closer.is_alive()
        assert open_per_loop(server) == [0, 0]
    finally:
        gate.set()
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("io_threads", [0, -1, "2", 1.5, True])
def test_io_threads_must_be_a_positive_int(io_threads: object) -> None:
    with pytest.raises(mummy.MummyError, match="io_threads must be a positive int"):
        mummy.Server(app, io_threads=io_threads)  # type: ignore[arg-type]


@pytest.mark.parametrize("io_threads", [1, 2])
def test_an_idle_connection_gets_one_last_request_once_close_begins(serve, io_threads) -> None:
    server = serve(app, workers=2, io_threads=io_threads)
    with connect(server.port) as talker, connect(server.port) as silent:
        assert served(talker, "before").get("connection") != "close"
        assert served(silent, "before").get("connection") != "close"
        closer = threading.Thread(target=server.close, kwargs={"timeout": 5})
        closer.start()
        # Both connections idle when the loops began closing: each may send one more.
        assert wait_for(lambda: sum(loop.last_requests_due for loop in server._loops) == 2)
        assert served(talker, "last")["connection"] == "close"
        assert read_until_close(talker) == b""
        # The one that sends nothing is closed once its grace is over.
        assert read_until_close(silent) == b""
        closer.join(HANG_S)
        assert not closer.is_alive()
        assert open_per_loop(server) == [0] * io_threads


def test_closing_is_true_once_close_begins() -> None:
    gate = threading.Event()
    running = threading.Event()

    def handler(request: mummy.Request) -> None:
        running.set()
        gate.wait(HANG_S)
        request.respond(200, None, "done")

    server = mummy.Server(handler, workers=1, io_threads=2)
    assert server.closing is False
    with serving(server) as server, connect(server.port) as sock:
        assert server.closing is False
        sock.sendall(GET % b"slow")
        assert running.wait(HANG_S)
        assert server.closing is False
        closer = threading.Thread(target=server.close, kwargs={"timeout": 10})
        closer.start()
        try:
            assert wait_for(lambda: all(loop.closing for loop in server._loops))
            assert server.closing is True and closer.is_alive()  # held by the handler
        finally:
            gate.set()
        assert read_response(sock)[0] == 200
        closer.join(HANG_S)
        assert not closer.is_alive()
        assert server.closing is True


def test_one_failing_loop_stops_the_whole_server(monkeypatch, caplog) -> None:
    take_messages = EventLoop._take_messages

    def second_loop_breaks(self: EventLoop) -> None:
        if self.index == 1:
            raise RuntimeError("loop 1's mailbox broke")
        take_messages(self)

    monkeypatch.setattr(EventLoop, "_take_messages", second_loop_breaks)
    server = mummy.Server(app, workers=2, io_threads=2)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            server.serve(0, "127.0.0.1")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    server.wait_until_ready(HANG_S)
    on_loop: dict[int, socket.socket] = {}  # a connection that loop holds
    extra: list[socket.socket] = []
    try:
        while len(on_loop) < 2:
            assert len(on_loop) + len(extra) < 64, "every connection went to one loop"
            before = open_per_loop(server)
            sock = connect(server.port)
            index = loop_that_accepted(server, before)
            if index in on_loop:
                extra.append(sock)
            else:
                on_loop[index] = sock
        served(on_loop[0], "loop0")  # loop 0 takes its messages
        with caplog.at_level(logging.ERROR, logger="mummy"):
            on_loop[1].sendall(GET % b"loop1")  # the response wakes loop 1's mailbox
            runner.join(HANG_S)
        assert outcome and isinstance(outcome[0], mummy.MummyError), outcome
        assert "IO loop failed" in str(outcome[0])
        assert "IO loop 1 failed" in caplog.text
        # Loop 0 was closed with it: its connection ended, its thread is gone.
        assert read_until_close(on_loop[0]) == b""
        assert not any(thread.is_alive() for thread in server._io_threads)
        with pytest.raises(OSError):
            connect(server.port, timeout=2).close()
    finally:
        for sock in [*on_loop.values(), *extra]:
            sock.close()
        server.close(timeout=2)
