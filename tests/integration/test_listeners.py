"""Where a server listens: dual-stack, Unix sockets, inherited fds, SO_REUSEPORT; and the CLI."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mummy
from tests.client import read_until_close
from tests.integration.test_server_api import ROOT, free_port, run_until_answering

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def hello(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, f"hello {request.remote_address}")


def ask(family: int, address: object) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(REQUEST)
        return read_until_close(sock)


def test_dual_stack(serve) -> None:
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
    server = mummy.Server(hello, workers=2)
    server.start(uds=path)
    try:
        assert ask(socket.AF_UNIX, path).startswith(b"HTTP/1.1 200 OK")
    finally:
        server.close()


def test_inherited_fd() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = mummy.Server(hello, workers=2)
    server.start(fd=listener.detach())
    try:
        assert ask(socket.AF_INET, ("127.0.0.1", port)).endswith(b"hello 127.0.0.1")
    finally:
        server.close()


def test_inherited_fd_must_be_a_listening_socket() -> None:
    with socket.socket() as plain, pytest.raises(mummy.MummyError, match="not a listening"):
        mummy.Server(hello, workers=1).start(fd=plain.fileno())


def test_reuse_port_lets_two_servers_share_a_port() -> None:
    port = free_port()
    first, second = mummy.Server(hello, workers=1), mummy.Server(hello, workers=1)
    first.start(port, "127.0.0.1", reuse_port=True)
    try:
        second.start(port, "127.0.0.1", reuse_port=True)
        try:
            for _ in range(4):
                assert ask(socket.AF_INET, ("127.0.0.1", port)).startswith(b"HTTP/1.1 200")
        finally:
            second.close()
    finally:
        first.close()


def test_cli_serves_a_wsgi_app_with_access_log() -> None:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mummy",
        "--wsgi",
        "tests.integration.test_listeners:wsgi_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--access-log",
    ]
    proc = run_until_answering(cmd, port)
    try:
        response = ask(socket.AF_INET, ("127.0.0.1", port))
        assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"wsgi says hi")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    output = proc.stdout.read() if proc.stdout else ""
    assert '"GET / HTTP/1.1" 200' in output  # the access log line


def wsgi_app(environ: dict, start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi says hi"]


def test_second_sigint_exits_at_once() -> None:
    port = free_port()
    proc = run_until_answering(
        [
            sys.executable,
            "-m",
            "mummy",
            "tests.integration.test_listeners:sleepy",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        port,
    )
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(REQUEST)  # a handler that sleeps 60 s holds the graceful close
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # still closing gracefully
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130


def sleepy(request: mummy.Request) -> None:
    time.sleep(60)
    request.respond(200)


def test_reload_restarts_on_source_change(tmp_path: Path) -> None:
    app = tmp_path / "reloadapp.py"
    app.write_text("def handler(r):\n    r.respond(200, None, 'one')\n")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mummy",
            "reloadapp:handler",
            "--reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline and not body.endswith(b"one"):
            try:
                body = ask(socket.AF_INET, ("127.0.0.1", port))
            except OSError:
                time.sleep(0.2)
        assert body.endswith(b"one")
        time.sleep(1.1)  # a different mtime
        app.write_text("def handler(r):\n    r.respond(200, None, 'two')\n")
        while time.monotonic() < deadline and not body.endswith(b"two"):
            try:
                body = ask(socket.AF_INET, ("127.0.0.1", port))
            except OSError:
                pass
            time.sleep(0.2)
        assert body.endswith(b"two")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
