"""Server configuration, lifecycle and real outside clients (curl); the CLI is in
tests/system/test_cli.py."""

import logging
import shutil
import socket
import subprocess

import pytest

import mummy
from tests.client import exchange


def hello(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((None,), {}, "must be callable"),
        ((hello, 3), {}, "websocket_handler must be callable"),
        ((hello,), {"workers": 0}, "workers must be a positive int"),
        ((hello,), {"max_body_len": -1}, "max_body_len must be a positive int"),
        ((hello,), {"log_handler": print}, "log_handler must be a logging.Handler"),
        ((hello,), {"gzip_level": 0}, "gzip_level must be from 1 to 9"),
        ((hello,), {"zstd_level": 23}, "zstd_level must be from 1 to 22"),
        ((hello,), {"compress_min_size": -1}, "compress_min_size must be an int >= 0"),
    ],
)
def test_config_mistakes_raise_mummy_error(args, options, message) -> None:
    with pytest.raises(mummy.MummyError, match=message):
        mummy.Server(*args, **options)


def test_port_in_use_raises_mummy_error(serve) -> None:
    server = serve(hello)
    with pytest.raises(mummy.MummyError, match="another server"):
        mummy.Server(hello, workers=1).start(server.port, "127.0.0.1")


def test_start_twice_raises(serve) -> None:
    server = serve(hello)
    server.wait_until_ready(1)
    with pytest.raises(mummy.MummyError, match="already been started"):
        server.start(0, "127.0.0.1")


def test_log_handler_receives_tracebacks(serve) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    def broken(request: mummy.Request) -> None:
        raise RuntimeError("boom")

    server = serve(broken, log_handler=Collect())
    exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in records)


def test_access_log_in_combined_format(serve, caplog) -> None:
    server = serve(hello, access_log=True)
    with caplog.at_level(logging.INFO, logger="mummy.access"):
        exchange(
            server.port,
            b"GET /x?y=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: probe\r\nConnection: close\r\n\r\n",
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "mummy.access"]
    assert len(lines) == 1
    assert lines[0].startswith("127.0.0.1 - - [")
    assert '"GET /x?y=1 HTTP/1.1" 200 13 "-" "probe" ' in lines[0]
    assert float(lines[0].rsplit(" ", 1)[1]) >= 0


def test_access_log_is_off_by_default(serve, caplog) -> None:
    server = serve(hello)
    with caplog.at_level(logging.INFO, logger="mummy.access"):
        exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert not [r for r in caplog.records if r.name == "mummy.access"]


def test_redirect(serve) -> None:
    server = serve(lambda r: r.redirect("/second"))
    response = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 303 See Other\r\n")
    assert b"\r\nLocation: /second\r\n" in response


def test_ipv6_loopback(serve) -> None:
    server = mummy.Server(hello, workers=2)
    try:
        server.start(0, "::1")
    except mummy.MummyError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        with socket.create_connection(("::1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b"Hello, World!" in sock.recv(4096)
    finally:
        server.close()


def test_curl_keep_alive_and_http10(serve) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed by the tests (Debian package curl)"
    server = serve(hello, workers=2)
    url = f"http://127.0.0.1:{server.port}/"
    out = subprocess.run(
        [curl, "-sS", "-v", url, url], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout == "Hello, World!" * 2
    assert "Re-using existing connection" in out.stderr or "Reusing" in out.stderr
    out = subprocess.run(
        [curl, "-sS", "-0", "-i", url], capture_output=True, text=True, timeout=30, check=True
    )
    assert "Connection: close" in out.stdout and out.stdout.endswith("Hello, World!")
