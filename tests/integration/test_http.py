"""Mummy's test_http cases and HTTP/1.1 behaviour, over real sockets."""

import fcntl
import http.client
import logging
import socket
import struct
import termios
import threading
import time

import pytest

import mummy
from tests.client import connect, exchange, read_response, read_until_close, status_of, undated
from tests.servers import wait_for

ALPHABET = b"abcdefghijklmnopqrstuvwxyz" * 100


def mummy_test_handler(request: mummy.Request) -> None:
    # Mummy's tests/test_http.nim handler.
    if request.path == "/":
        if request.method == "GET":
            request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")
        else:
            request.respond(405)
    elif request.path == "/compressed":
        request.respond(200, {"Content-Type": "text/plain"}, ALPHABET)
    elif request.path == "/raise":
        raise ValueError("expected by the test")
    else:
        request.respond(404)
    assert request.responded


def test_hello_world_wire_format(serve) -> None:
    server = serve(mummy_test_handler)
    response = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Type: text/plain" in lines
    assert b"Content-Length: 13" in lines
    assert b"Connection: close" in lines
    assert any(line.startswith(b"Date: ") for line in lines)
    assert body == b"Hello, World!"


def test_post_gets_405_with_http_client(serve) -> None:
    server = serve(mummy_test_handler)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/", body=b"")
    response = conn.getresponse()
    assert response.status == 405
    assert response.reason == "Method Not Allowed"
    assert response.getheader("Content-Length") == "0"
    assert response.read() == b""


def test_handler_exception_gets_500_and_a_logged_traceback(serve, caplog) -> None:
    server = serve(mummy_test_handler)
    with caplog.at_level(logging.ERROR, logger="mummy"):
        response = exchange(
            server.port, b"GET /raise HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
    assert status_of(response) == 500
    assert any(r.exc_info and "expected by the test" in str(r.exc_info[1]) for r in caplog.records)
    # The server keeps serving.
    ok = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.endswith(b"Hello, World!")


def test_handler_that_does_not_respond_gets_500(serve, caplog) -> None:
    server = serve(lambda request: None)
    with caplog.at_level(logging.ERROR, logger="mummy"):
        response = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 500
    assert any("without responding" in r.getMessage() for r in caplog.records)


def test_responding_twice_raises(serve) -> None:
    errors: list[BaseException] = []

    def handler(request: mummy.Request) -> None:
        request.respond(200, body="first")
        try:
            request.respond(200, body="second")
        except mummy.MummyError as exc:
            errors.append(exc)

    server = serve(handler)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        assert read_response(sock)[2] == b"first"
        assert read_response(sock)[2] == b"first"
    assert len(errors) == 2 and "already been responded" in str(errors[0])


def test_keep_alive_many_requests_on_one_connection(serve) -> None:
    server = serve(lambda r: r.respond(200, body=r.path))
    with connect(server.port) as sock:
        for i in range(200):
            sock.sendall(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body = read_response(sock)
            assert (status, body) == (200, f"/{i}".encode())
            assert "connection" not in headers


def test_pipelined_requests_answered_in_order(serve) -> None:
    def handler(request: mummy.Request) -> None:
        # Earlier requests sleep longer: order must still hold.
        n = int(request.path[1:])
        time.sleep((20 - n) * 0.001)
        request.respond(200, body=str(n))

    server = serve(handler)
    with connect(server.port) as sock:
        sock.sendall(b"".join(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(20)))
        assert [read_response(sock)[2] for _ in range(20)] == [str(i).encode() for i in range(20)]


@pytest.mark.parametrize(
    ("request_bytes", "connection_header", "closes"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", "close", True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "keep-alive", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "close", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None, False),
    ],
)
def test_keep_alive_rules(serve, request_bytes, connection_header, closes) -> None:
    server = serve(lambda r: r.respond(200, body="ok"))
    with connect(server.port, timeout=5) as sock:
        sock.sendall(request_bytes)
        status, headers, body = read_response(sock)
        assert (status, body) == (200, b"ok")
        assert headers.get("connection") == connection_header
        if closes:
            assert read_until_close(sock) == b""
        else:
            sock.sendall(request_bytes)
            assert read_response(sock)[2] == b"ok"


def test_content_length_body_and_chunked_body(serve) -> None:
    server = serve(lambda r: r.respond(200, body=r.body))
    with connect(server.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert read_response(sock)[2] == b"hello"
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: dropped\r\n\r\n"
        )
        assert read_response(sock)[2] == b"hello world"


def test_body_sent_byte_by_byte(serve) -> None:
    server = serve(lambda r: r.respond(200, body=r.body))
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    with connect(server.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a segment a byte
        for i in range(len(request)):
            sock.sendall(request[i : i + 1])
            time.sleep(0.001)  # pacing: the server reads the bytes as they come, or together
        assert read_response(sock)[2] == b"abc"


def test_expect_100_continue(serve) -> None:
    server = serve(lambda r: r.respond(200, body=r.body))
    with connect(server.port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        assert read_response(sock)[2] == b"data"


def test_head_gets_get_headers_and_no_body(serve) -> None:
    server = serve(lambda r: r.respond(200, {"Content-Type": "text/plain"}, "Hello, World!"))
    with connect(server.port) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        data = b""
        while data.count(b"\r\n\r\n") < 2 or not data.endswith(b"Hello, World!"):
            data += sock.recv(4096)
    head_response, get_response = data.split(b"HTTP/1.1 ")[1:]
    assert head_response.endswith(b"\r\n\r\n")  # no body
    assert b"Content-Length: 13" in head_response and b"Content-Length: 13" in get_response


def test_no_content_length_on_204_and_304(serve) -> None:
    server = serve(lambda r: r.respond(int(r.path[1:])))
    for status in (204, 304):
        response = exchange(
            server.port, f"GET /{status} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert status_of(response) == status
        assert b"Content-Length" not in response
    response = exchange(server.port, b"GET /200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Content-Length: 0\r\n" in response


def unread(sock: socket.socket) -> int:
    """Bytes in the socket's receive queue, not yet read (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0" * 4))[0]


def test_large_response_to_slow_reader(serve) -> None:
    payload = bytes(range(256)) * 40_000  # ~10 MB, more than the socket buffers hold
    server = serve(lambda r: r.respond(200, body=payload), max_body_len=1 << 20)
    with socket.socket() as sock:
        # A fixed 64 KiB receive buffer (no autotuning), so that the client's side
        # cannot take in the response while the client is not reading.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # The receive queue full: the server is left holding the rest of the 10 MB
        # (more than its send buffer takes) until this slow reader reads.
        assert wait_for(lambda: unread(sock) >= 64 * 1024)
        status, _, body = read_response(sock, timeout=30)
    assert status == 200 and body == payload


def test_respond_from_another_thread(serve) -> None:
    def handler(request: mummy.Request) -> None:
        t = threading.Thread(target=request.respond, args=(200, None, "from a thread"))
        t.start()
        t.join()

    server = serve(handler)
    response = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert undated(response) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nDate: <date>\r\nConnection: close\r\n"
        b"\r\nfrom a thread"
    )


def test_bad_response_headers_raise_and_give_500(serve) -> None:
    errors: list[str] = []

    def handler(request: mummy.Request) -> None:
        try:
            request.respond(200, {"X-Bad": "a\r\nInjected: yes"})
        except mummy.MummyError as exc:
            errors.append(str(exc))
            raise

    server = serve(handler)
    response = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 500
    assert b"Injected" not in response
    assert errors and "CR, LF" in errors[0]
