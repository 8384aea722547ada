"""A failure while the IO thread serves one connection closes that connection only;
a failure of the loop itself stops the server, and serve() says so (and the CLI exits
2: tests/system/test_cli.py).

Each test makes one connection's driver raise at one stage (the bytes arriving,
the response coming back from a worker, a timer, the accept) and checks that
connections opened before and after are served."""

import logging
import socket
import threading

import pytest

import mummy
import mummy.server
from mummy.core.http1_driver import Http1Driver
from mummy.core.loop import EventLoop
from tests.client import connect, read_response, read_until_close
from tests.servers import tasks_in_flight, wait_for

GET = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"


def app(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, f"ok {request.path}")


def served(sock: socket.socket, path: str) -> bool:
    sock.sendall(GET % path.encode())
    status, _, body = read_response(sock)
    return status == 200 and body == f"ok /{path}".encode()


@pytest.fixture
def before_and_after(serve):
    """(server, a keep-alive connection opened before the fault, check) where
    check() proves that connection and a new one are both served."""
    servers = []

    def start(**options):
        server = serve(app, **options)
        early = connect(server.port)
        assert served(early, "before")
        servers.append(early)

        def check() -> None:
            assert served(early, "before-again")
            with connect(server.port) as late:
                assert served(late, "after")

        return server, check

    yield start
    for sock in servers:
        sock.close()


def test_a_driver_raising_on_input_closes_only_that_connection(
    before_and_after, monkeypatch, caplog
) -> None:
    original = Http1Driver.received

    def received(self: Http1Driver, data: bytes) -> None:
        if b"/boom" in data:
            raise RuntimeError("parser bug")
        original(self, data)

    monkeypatch.setattr(Http1Driver, "received", received)
    server, check = before_and_after()
    with caplog.at_level(logging.ERROR, logger="mummy"), connect(server.port) as victim:
        victim.sendall(GET % b"boom")
        answer = read_until_close(victim)
    # Nothing was in flight: the connection's last word is a 500.
    assert answer.startswith(b"HTTP/1.1 500 ") and b"Connection: close" in answer
    assert "parser bug" in caplog.text and "serving it failed" in caplog.text
    check()


def test_a_driver_raising_on_a_response_closes_only_that_connection(
    before_and_after, monkeypatch
) -> None:
    original = Http1Driver.message

    def message(self: Http1Driver, msg) -> None:
        if b"ok /boom" in getattr(msg, "wire", b""):
            raise RuntimeError("bug while taking a response")
        original(self, msg)

    monkeypatch.setattr(Http1Driver, "message", message)
    server, check = before_and_after()
    with connect(server.port) as victim:
        victim.sendall(GET % b"boom")
        # A request was with a worker: nothing can follow safely, so just a close.
        assert read_until_close(victim) == b""
    check()


def test_a_driver_raising_in_a_timer_closes_only_that_connection(
    before_and_after, monkeypatch
) -> None:
    fired = threading.Event()

    def timer_fired(self: Http1Driver, kind: int) -> None:
        fired.set()
        raise RuntimeError("bug in a timer")

    server, check = before_and_after(header_timeout=0.5, keep_alive_timeout=60)
    monkeypatch.setattr(Http1Driver, "timer_fired", timer_fired)
    with connect(server.port) as victim:
        victim.sendall(b"GET / HTT")  # then silence: the header timer fires
        assert fired.wait(5)
        assert read_until_close(victim).startswith(b"HTTP/1.1 500 ")
    monkeypatch.undo()
    check()


def test_a_failing_accept_of_one_connection_spares_the_others(monkeypatch, serve) -> None:
    calls = []
    original = mummy.server.connection_driver

    def connection_driver(loop, conn):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("bug while accepting")
        return original(loop, conn)

    monkeypatch.setattr(mummy.server, "connection_driver", connection_driver)
    server = serve(app)
    with connect(server.port) as first:
        assert served(first, "one")
        with connect(server.port) as second:
            assert read_until_close(second) == b""  # closed at once
        assert served(first, "one-again")
        with connect(server.port) as third:
            assert served(third, "three")


def test_a_failing_loop_makes_serve_raise(monkeypatch) -> None:
    def broken(self: EventLoop) -> None:
        raise RuntimeError("the mailbox broke")

    monkeypatch.setattr(EventLoop, "_take_messages", broken)
    server = mummy.Server(app, workers=2)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            server.serve(0, "127.0.0.1")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    assert wait_for(lambda: server.port)
    with connect(server.port) as sock:
        sock.sendall(GET % b"x")  # the response wakes the mailbox, which fails
        runner.join(15)
    assert outcome and isinstance(outcome[0], mummy.MummyError), outcome
    assert "IO loop failed" in str(outcome[0])


def test_when_the_loop_fails_websocket_handlers_still_get_close(monkeypatch) -> None:
    from mummy.core.listener import Acceptor

    events: list[mummy.Event] = []
    closed = threading.Event()

    def on_ws(ws, event, message) -> None:
        events.append(event)
        if event is mummy.Event.CLOSE:
            closed.set()

    accepts = []
    original = Acceptor.accept

    def accept(self, connections):
        accepts.append(1)
        if len(accepts) == 2:
            raise RuntimeError("the listener broke")
        return original(self, connections)

    monkeypatch.setattr(Acceptor, "accept", accept)
    server = mummy.Server(lambda r: r.upgrade_to_websocket(), on_ws, workers=2)
    server.start(0, "127.0.0.1")
    try:
        from websockets.sync.client import connect as ws_connect

        with ws_connect(f"ws://127.0.0.1:{server.port}/"):
            assert wait_for(lambda: events == [mummy.Event.OPEN]), events
            socket.create_connection(("127.0.0.1", server.port)).close()  # the failing accept
            assert closed.wait(10), events
        # Dropped without a Close handshake: ERROR, then CLOSE (1006), once.
        assert events == [mummy.Event.OPEN, mummy.Event.ERROR, mummy.Event.CLOSE]
    finally:
        server.close(timeout=2)


def test_a_silent_client_is_timed_out_while_the_ring_is_full(serve) -> None:
    release = threading.Event()

    def handler(request: mummy.Request) -> None:
        release.wait(10)
        request.respond(200, None, "ok")

    server = serve(handler, workers=1, max_pending_requests=1, header_timeout=0.5)
    try:
        busy = connect(server.port)
        busy.sendall(GET % b"busy")
        assert wait_for(lambda: tasks_in_flight(server) == 1)  # the ring is full
        with connect(server.port) as silent:
            assert read_until_close(silent, timeout=10) == b""  # closed, quietly
    finally:
        release.set()
    assert read_response(busy)[0] == 200
    busy.close()
