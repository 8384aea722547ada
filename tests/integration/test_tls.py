"""HTTPS and wss:// with a throwaway certificate made by the openssl command."""

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

import mummy
from tests.client import read_response, read_until_close


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a test certificate"
    folder = tmp_path_factory.mktemp("cert")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(crt), str(key)


def client_context(crt: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=crt)
    context.set_alpn_protocols(["http/1.1"])
    return context


def hello(request: mummy.Request) -> None:
    if request.path == "/ws":
        request.upgrade_to_websocket()
    else:
        request.respond(200, {"Content-Type": "text/plain"}, f"secure {request.path}")


def echo(ws: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None) -> None:
    if event is mummy.Event.MESSAGE and message and message.kind is mummy.MessageKind.TEXT:
        ws.send(message.data)


@pytest.fixture
def tls_server(cert):
    server = mummy.Server(hello, websocket_handler=echo, workers=4)
    server.start(0, "127.0.0.1", certfile=cert[0], keyfile=cert[1])
    yield server
    server.close()


def test_https_keep_alive_with_python_ssl(tls_server, cert) -> None:
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    with client_context(cert[0]).wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        for i in range(20):
            sock.sendall(f"GET /{i} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            assert read_response(sock)[2] == f"secure /{i}".encode()


def test_curl_https(tls_server, cert) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed by the tests"
    url = f"https://127.0.0.1:{tls_server.port}/x"
    out = subprocess.run(
        [curl, "-sS", "--http1.1", "--cacert", cert[0], url, url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout == "secure /xsecure /x"


def test_wss(tls_server, cert) -> None:
    # The asyncio client, not websockets.sync: the sync client reads on a background
    # thread while its caller writes, on one SSLSocket, and on 3.13t (whose ssl module
    # does not serialize them) that loses its handshake request about 1 run in 5,
    # whichever server it talks to (seen with a 3.13 GIL client: never).
    context = ssl.create_default_context(cafile=cert[0])

    async def echo() -> str:
        url = f"wss://localhost:{tls_server.port}/ws"
        async with ws_connect(url, ssl=context, open_timeout=10) as ws:
            await ws.send("over tls")
            return str(await asyncio.wait_for(ws.recv(), 10))

    assert asyncio.run(echo()) == "over tls"


def test_plaintext_on_the_tls_port_is_dropped_and_others_are_served(tls_server, cert) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not read_until_close(sock).startswith(b"HTTP/1.1 200")
    test_https_keep_alive_with_python_ssl(tls_server, cert)


def test_handshake_storm_while_plaintext_clients_are_served(cert) -> None:
    """Invariant only: during 200 concurrent handshakes every client is answered."""
    tls = mummy.Server(hello, workers=4)
    tls.start(0, "127.0.0.1", certfile=cert[0], keyfile=cert[1])
    plain = mummy.Server(hello, workers=4)
    plain.start(0, "127.0.0.1")
    errors: list[BaseException] = []

    def handshake() -> None:
        try:
            raw = socket.create_connection(("127.0.0.1", tls.port), timeout=30)
            with client_context(cert[0]).wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(b"GET /storm HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock, timeout=30)[2] == b"secure /storm"
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=handshake) for _ in range(200)]
        for t in threads:
            t.start()
        with socket.create_connection(("127.0.0.1", plain.port), timeout=30) as sock:
            for i in range(50):
                sock.sendall(f"GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert read_response(sock, timeout=30)[2] == f"secure /p{i}".encode()
        for t in threads:
            t.join(60)
        assert errors == []
    finally:
        tls.close()
        plain.close()


def test_bad_certificate_path_raises_mummy_error(tmp_path: Path) -> None:
    with pytest.raises(mummy.MummyError, match="cannot load the certificate"):
        mummy.Server(hello, workers=1).start(0, "127.0.0.1", certfile=str(tmp_path / "none.pem"))
