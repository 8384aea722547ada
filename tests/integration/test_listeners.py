"""Where a server listens: dual-stack, Unix sockets, inherited fds, SO_REUSEPORT. (The
CLI's own listening is in tests/system/test_cli.py.)"""

import socket
from pathlib import Path

import pytest

import mummy
from tests.client import read_until_close, undated
from tests.servers import free_port, serving

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def hello(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, f"hello {request.remote_address}")


def hello_response(remote_address: str) -> bytes:
    """What `hello` answers REQUEST from `remote_address`, its Date aside."""
    body = f"hello {remote_address}".encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
        b"Date: <date>\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


def ask(family: int, address: object) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(REQUEST)
        return read_until_close(sock)


def test_dual_stack() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = mummy.Server(hello, workers=2)
    try:
        server.start(0, "::")
    except mummy.MummyError as exc:
        pytest.skip(f"cannot bind :: here: {exc}")
    try:
        assert ask(socket.AF_INET6, ("::1", server.port)).endswith(b"hello ::1")
        assert ask(socket.AF_INET, ("127.0.0.1", server.port)).endswith(b"hello ::ffff:127.0.0.1")
    finally:
        server.close()


def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "mummy.sock")
    with serving(mummy.Server(hello, workers=2), uds=path):
        # A Unix socket's peer has no address.
        assert undated(ask(socket.AF_UNIX, path)) == hello_response("")


def test_inherited_fd() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with serving(mummy.Server(hello, workers=2), fd=listener.detach()):
        assert ask(socket.AF_INET, ("127.0.0.1", port)).endswith(b"hello 127.0.0.1")


def test_inherited_fd_must_be_a_listening_socket() -> None:
    with socket.socket() as plain, pytest.raises(mummy.MummyError, match="not a listening"):
        mummy.Server(hello, workers=1).start(fd=plain.fileno())


def test_reuse_port_lets_two_servers_share_a_port() -> None:
    port = free_port()
    first, second = mummy.Server(hello, workers=1), mummy.Server(hello, workers=1)
    with serving(first, port, reuse_port=True), serving(second, port, reuse_port=True):
        for _ in range(4):
            response = ask(socket.AF_INET, ("127.0.0.1", port))
            assert undated(response) == hello_response("127.0.0.1")
