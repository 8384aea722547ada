"""`Server(io_threads=N)`: several event loops over one worker pool, on a TCP port
(SO_REUSEPORT sockets), a Unix socket and an inherited fd (one shared socket); and the
close that answers what was already received."""

from __future__ import annotations

import http.client
import os
import select
import socket
import threading
from pathlib import Path

import httpx
import pytest

import mummy
from tests.client import connect, read_response
from tests.servers import HANG_S, serving, tasks_in_flight, wait_for

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def hello(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, "hello")


def open_connections(count: int, make: object) -> list[socket.socket]:
    """`count` keep-alive connections from 8 threads at once, each answered once."""
    socks: list[socket.socket] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def opener(n: int) -> None:
        barrier.wait(HANG_S)
        for _ in range(n):
            sock = make()  # type: ignore[operator]
            sock.sendall(GET)
            assert read_response(sock)[2] == b"hello"
            with lock:
                socks.append(sock)

    threads = [threading.Thread(target=opener, args=(count // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_S)
    return socks


def per_loop(server: mummy.Server) -> list[int]:
    return [loop.connection_count for loop in server._loops]


def test_a_tcp_port_spreads_connections_over_the_loops() -> None:
    with serving(mummy.Server(hello, workers=2, io_threads=2)) as server:
        socks = open_connections(40, lambda: connect(server.port))
        assert len(socks) == 40
        # SO_REUSEPORT hashes each connection to one loop's socket: every loop has some.
        assert wait_for(lambda: sum(per_loop(server)) == 40)
        assert all(count > 0 for count in per_loop(server)), per_loop(server)
        for sock in socks:
            sock.close()
        assert wait_for(lambda: sum(per_loop(server)) == 0)


@pytest.mark.parametrize("kind", ["uds", "fd"])
def test_a_shared_socket_is_served_by_every_loop(kind: str, tmp_path: Path) -> None:
    if kind == "uds":
        path = str(tmp_path / "s.sock")
        start: dict[str, object] = {"uds": path}

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(HANG_S)
            sock.connect(path)
            return sock
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        start = {"fd": os.dup(listener.fileno())}
        listener.close()

        def make() -> socket.socket:
            return connect(port)

    with serving(mummy.Server(hello, workers=2, io_threads=2), **start) as server:
        socks = open_connections(64, make)
        assert len(socks) == 64 and wait_for(lambda: sum(per_loop(server)) == 64)
        # EPOLLEXCLUSIVE and one accept per wake-up: a burst reaches both loops.
        assert all(count > 0 for count in per_loop(server)), per_loop(server)
        for sock in socks:
            sock.close()


def test_http2_and_websockets_on_several_loops() -> None:
    echoed: list[bytes] = []

    def on_ws(ws: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None) -> None:
        if message is not None:
            ws.send(message.data, message.kind)

    def handler(request: mummy.Request) -> None:
        if request.path == "/ws":
            request.upgrade_to_websocket()
        else:
            hello(request)

    server = mummy.Server(handler, on_ws, workers=4, io_threads=2)
    with serving(server):
        clients = [httpx.Client(http1=False, http2=True) for _ in range(12)]
        try:
            for client in clients:
                response = client.get(f"http://127.0.0.1:{server.port}/")
                assert (response.http_version, response.text) == ("HTTP/2", "hello")
            assert all(count > 0 for count in per_loop(server)), per_loop(server)
        finally:
            for client in clients:
                client.close()
        from websockets.sync.client import connect as ws_connect

        for i in range(12):
            with ws_connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=HANG_S) as ws:
                ws.send(f"m{i}")
                echoed.append(ws.recv(HANG_S).encode())
        assert echoed == [f"m{i}".encode() for i in range(12)]


def test_close_answers_in_flight_requests_on_every_loop() -> None:
    gate = threading.Event()
    running = threading.Semaphore(0)

    def handler(request: mummy.Request) -> None:
        running.release()
        gate.wait(HANG_S)
        hello(request)

    server = mummy.Server(handler, workers=40, io_threads=2)
    with serving(server):
        socks = [connect(server.port) for _ in range(40)]
        for sock in socks:
            sock.sendall(GET)
        for _ in socks:
            assert running.acquire(timeout=HANG_S)
        assert all(loop.ring.in_flight > 0 for loop in server._loops)
        assert not server.closing
        closer = threading.Thread(target=server.close, kwargs={"timeout": HANG_S})
        closer.start()
        assert wait_for(lambda: server.closing)
        gate.set()
        for sock in socks:
            status, headers, body = read_response(sock)
            assert (status, body, headers.get("connection")) == (200, b"hello", "close")
            sock.close()
        closer.join(HANG_S)
        assert not closer.is_alive() and sum(per_loop(server)) == 0


def test_an_idle_keep_alive_connection_gets_one_last_request_during_close() -> None:
    gate = threading.Event()

    def handler(request: mummy.Request) -> None:
        if request.path == "/hold":
            gate.wait(HANG_S)
        hello(request)

    server = mummy.Server(handler, workers=2)
    with serving(server):
        idle = connect(server.port)
        idle.sendall(GET)
        assert read_response(idle)[0] == 200
        held = connect(server.port)
        held.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")  # keeps close() going
        assert wait_for(lambda: tasks_in_flight(server) == 1)
        closer = threading.Thread(target=server.close, kwargs={"timeout": HANG_S})
        closer.start()
        assert wait_for(lambda: server._loops[0].closing)
        idle.sendall(GET)  # within the grace: answered, then closed
        status, headers, body = read_response(idle)
        assert (status, body, headers.get("connection")) == (200, b"hello", "close")
        assert idle.recv(1) == b""
        gate.set()
        assert read_response(held)[0] == 200
        closer.join(HANG_S)
        idle.close()
        held.close()


def test_an_idle_connection_that_sends_nothing_is_closed_after_the_grace() -> None:
    with serving(mummy.Server(hello, workers=2)) as server:
        idle = connect(server.port)
        idle.sendall(GET)
        assert read_response(idle)[0] == 200
        closer = threading.Thread(target=server.close, kwargs={"timeout": HANG_S})
        closer.start()
        assert idle.recv(1) == b""  # closed by the server, long before HANG_S
        closer.join(HANG_S)
        assert not closer.is_alive()
        idle.close()


def test_max_connections_is_shared_between_the_loops() -> None:
    with serving(mummy.Server(hello, workers=2, io_threads=2, max_connections=4)) as server:
        socks = [connect(server.port) for _ in range(10)]
        for sock in socks:
            sock.sendall(GET)
        assert wait_for(lambda: sum(per_loop(server)) > 0)
        waiting = list(socks)
        while waiting:
            # At most 2 open per loop; the rest wait in the kernel's backlog...
            assert max(per_loop(server)) <= 2, per_loop(server)
            readable, _, _ = select.select(waiting, [], [], HANG_S)
            assert readable, f"{len(waiting)} clients never served"
            for sock in readable:
                assert read_response(sock)[2] == b"hello"
                sock.close()  # ...and are served as others leave
                waiting.remove(sock)


@pytest.mark.parametrize("value", [0, "2", 1.5])
def test_io_threads_must_be_a_positive_int(value: object) -> None:
    with pytest.raises(mummy.MummyError, match="io_threads must be a positive int"):
        mummy.Server(hello, io_threads=value)  # type: ignore[arg-type]


def test_http_client_sees_one_server_across_loops() -> None:
    with serving(mummy.Server(hello, workers=2, io_threads=3)) as server:
        for _ in range(30):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG_S)
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"hello"
            conn.close()
        assert len(server._loops) == 3
