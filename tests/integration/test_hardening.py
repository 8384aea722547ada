"""Slow and idle clients, overload and faults: invariants only (who was answered,
what was cut off, what leaked), never timings or memory figures. (Slowloris, with 500
attackers: tests/system/test_slowloris.py.)"""

import os
import socket
import threading
import time

import pytest

import mummy
from tests.client import connect, exchange, read_response, read_until_close, status_of
from tests.servers import tasks_in_flight, wait_for


def test_idle_keep_alive_connections_are_closed_quietly(serve) -> None:
    server = serve(lambda r: r.respond(200, body="ok"), keep_alive_timeout=0.5)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"ok"
        assert read_until_close(sock) == b""  # closed, without a 408


def test_silent_connection_is_closed_without_a_response(serve) -> None:
    server = serve(lambda r: r.respond(200), header_timeout=0.5)
    with connect(server.port) as sock:
        assert read_until_close(sock) == b""


def test_body_timeout_gets_408(serve) -> None:
    ran = []
    server = serve(lambda r: ran.append(1), body_timeout=0.5)
    with connect(server.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert status_of(read_until_close(sock)) == 408
    assert ran == []


def test_max_connections_leaves_clients_in_the_backlog(serve) -> None:
    server = serve(lambda r: r.respond(200, body="ok"), max_connections=5)
    held = [connect(server.port) for _ in range(5)]
    for sock in held:  # make sure the server accepted all five
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"ok"
    waiting = connect(server.port)  # completes in the kernel's backlog
    waiting.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # A "nothing happens" check: in 0.5 s the server would have accepted and answered
    # it many times over; it did neither.
    waiting.settimeout(0.5)
    with pytest.raises(TimeoutError):
        waiting.recv(100)
    assert sum(loop.connection_count for loop in server._loops) == 5
    held.pop().close()
    assert read_until_close(waiting).endswith(b"ok")
    for sock in held:
        sock.close()
    waiting.close()


def test_queue_timeout_sheds_load_with_503(serve) -> None:
    gate = threading.Event()

    def handler(request: mummy.Request) -> None:
        gate.wait(10)
        request.respond(200, body="ran")

    server = serve(handler, workers=1, queue_timeout=0.3)
    socks = [connect(server.port) for _ in range(4)]
    for sock in socks:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_for(lambda: tasks_in_flight(server) == 4)  # one running, three queued
    time.sleep(0.5)  # a test of queue_timeout: the three queued wait longer than 0.3 s
    gate.set()
    results = [read_response(sock) for sock in socks]
    assert [status for status, _, _ in results].count(200) == 1
    shed = [(s, h) for s, h, _ in results if s == 503]
    assert len(shed) == 3 and all(h["retry-after"] == "1" for _, h in shed)
    for sock in socks:
        sock.close()


def test_full_ring_is_backpressure_not_loss(serve) -> None:
    def handler(request: mummy.Request) -> None:
        time.sleep(0.001)  # a little work, so that the ring fills
        request.respond(200, body=request.path)

    server = serve(handler, workers=2, max_pending_requests=3)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with connect(server.port, timeout=60) as sock:
                sock.sendall(
                    b"".join(b"GET /%d/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i, n) for n in range(20))
                )
                for n in range(20):
                    assert read_response(sock, timeout=60)[2] == f"/{i}/{n}".encode()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def test_a_client_that_never_reads_is_not_served_without_bound(serve) -> None:
    big = b"x" * 100_000
    handled = []

    def handler(request: mummy.Request) -> None:
        handled.append(1)
        request.respond(200, body=big)

    server = serve(handler, compress=False)
    with connect(server.port, timeout=60) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 300)
        assert wait_for(lambda: handled)
        # A "nothing happens" check: given 1 s, a server without a bound on pending
        # output would run all 300; this one stops at what the socket and one response
        # hold (far fewer than 300 x 100 KB produced).
        time.sleep(1.0)
        assert len(handled) < 100
        for _ in range(300):
            assert read_response(sock, timeout=60)[2] == big
    assert len(handled) == 300


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_resets_and_half_closes_leak_nothing(serve) -> None:
    gate = threading.Event()

    def handler(request: mummy.Request) -> None:
        if request.path == "/slow":
            gate.wait(5)
        request.respond(200, body=b"y" * 200_000)

    server = serve(handler, workers=4, compress=False)
    exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    fds_before, threads_before = open_fds(), threading.active_count()
    linger_rst = (socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    for _ in range(20):
        # Reset mid-request (half a head), mid-response, and while a handler runs.
        for data, wait in [
            (b"GET / HTTP/1.1\r\nHo", 0.0),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.01),
            (b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", 0.0),
        ]:
            sock = connect(server.port)
            sock.setsockopt(*linger_rst)
            sock.sendall(data)
            time.sleep(wait)  # pacing: the invariants below hold whatever has arrived
            sock.close()
        # Half-close: the request is answered, then the connection closed.
        with connect(server.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            assert read_until_close(sock).endswith(b"y" * 1000)
    gate.set()
    assert wait_for(lambda: open_fds() <= fds_before)
    assert wait_for(lambda: threading.active_count() <= threads_before)
    (loop,) = server._loops
    assert wait_for(lambda: loop.connection_count == 0)


def test_response_splitting_is_impossible(serve) -> None:
    def handler(request: mummy.Request) -> None:
        request.respond(200, {"Set-Cookie": "a=b\r\nX-Injected: 1"})

    server = serve(handler)
    response = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 500 and b"X-Injected" not in response


def test_close_returns_by_the_deadline_when_a_handler_sleeps_past_it(serve) -> None:
    release = threading.Event()
    started = threading.Event()
    finished = threading.Event()

    def handler(request: mummy.Request) -> None:
        started.set()
        release.wait()  # until the test says: only a close that gives up can return
        finished.set()

    server = serve(handler, workers=2)
    sock = connect(server.port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert started.wait(10)
    closer = threading.Thread(target=server.close, kwargs={"timeout": 1.0})
    closer.start()
    closer.join(30)  # a bound on a hang: close() returns about 1 s after it starts
    returned = not closer.is_alive()
    handler_still_running = not finished.is_set()
    release.set()
    sock.close()
    assert returned, "close() waited for the handler past its deadline"
    assert handler_still_running


def test_handler_raising_system_exit_does_not_kill_a_worker(serve) -> None:
    def handler(request: mummy.Request) -> None:
        if request.path == "/exit":
            raise SystemExit(3)
        request.respond(200, body="alive")

    server = serve(handler, workers=1)
    for _ in range(3):
        response = exchange(
            server.port, b"GET /exit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert status_of(response) == 500
    ok = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.endswith(b"alive")  # the only worker survived all three
