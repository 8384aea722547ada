"""Response compression and request decompression over real sockets and real decoders."""

import gzip
import shutil
import subprocess
import zlib

import pytest
import zstandard

import mummy
from tests.client import connect, exchange, read_response, status_of

ALPHABET = b"abcdefghijklmnopqrstuvwxyz" * 100  # Mummy's /compressed body (2600 bytes)
JSON = b'{"id": 1, "tags": ["a", "b"], "text": "hello"}' * 100


def handler(request: mummy.Request) -> None:
    if request.path == "/compressed":
        request.respond(200, {"Content-Type": "text/plain"}, ALPHABET)
    elif request.path == "/json":
        request.respond(200, {"Content-Type": "application/json", "Vary": "Cookie"}, JSON)
    elif request.path == "/png":
        request.respond(200, {"Content-Type": "image/png"}, ALPHABET)
    elif request.path == "/size":
        request.respond(200, None, b"x" * int(request.query_params["n"]))
    elif request.path == "/no-compress":
        request.respond(200, {"Content-Type": "text/plain"}, ALPHABET, compress=False)
    elif request.path == "/cl":
        request.respond(200, {"Content-Length": str(len(ALPHABET))}, ALPHABET)
    elif request.path == "/echo":
        request.respond(200, {"Content-Type": "application/octet-stream"}, request.body)
    else:
        request.respond(404)


def get(port: int, path: str, accept: str | None, method: str = "GET"):
    with connect(port) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
        if accept is not None:
            head += f"Accept-Encoding: {accept}\r\n"
        sock.sendall((head + "\r\n").encode())
        return read_response(sock)


@pytest.mark.parametrize(
    ("accept", "coding", "decode"),
    [
        ("gzip", "gzip", gzip.decompress),
        # Mummy sends raw deflate; RFC 9110 §8.4.1.2 says deflate is the zlib format.
        ("deflate", "deflate", zlib.decompress),
        ("zstd", "zstd", lambda b: zstandard.ZstdDecompressor().decompress(b)),
        ("gzip, deflate, br, zstd", "zstd", lambda b: zstandard.ZstdDecompressor().decompress(b)),
        (None, None, lambda b: b),
        ("br", None, lambda b: b),
    ],
)
def test_mummy_compressed_route(serve, accept, coding, decode) -> None:
    server = serve(handler)
    status, headers, body = get(server.port, "/compressed", accept)
    assert status == 200
    assert headers.get("content-encoding") == coding
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(body)
    assert decode(body) == ALPHABET


def test_threshold_is_860_bytes(serve) -> None:
    server = serve(handler)
    assert "content-encoding" not in get(server.port, "/size?n=860", "gzip")[1]
    _, headers, body = get(server.port, "/size?n=861", "gzip")
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == b"x" * 861


def test_existing_vary_is_extended_and_types_respected(serve) -> None:
    server = serve(handler)
    _, headers, body = get(server.port, "/json", "gzip")
    assert headers["vary"] == "Cookie, Accept-Encoding"
    assert gzip.decompress(body) == JSON
    _, headers, body = get(server.port, "/png", "gzip")
    assert "content-encoding" not in headers and body == ALPHABET
    _, headers, body = get(server.port, "/no-compress", "gzip")
    assert "content-encoding" not in headers and body == ALPHABET


def test_handler_content_length_is_replaced(serve) -> None:
    server = serve(handler)
    _, headers, body = get(server.port, "/cl", "gzip")
    assert int(headers["content-length"]) == len(body) < len(ALPHABET)


def test_head_gets_the_headers_of_the_compressed_get(serve) -> None:
    server = serve(handler)
    _, get_headers, _ = get(server.port, "/compressed", "zstd")
    with connect(server.port) as sock:
        sock.sendall(b"HEAD /compressed HTTP/1.1\r\nHost: x\r\nAccept-Encoding: zstd\r\n\r\n")
        sock.settimeout(5)
        data = b""
        while not data.endswith(b"\r\n\r\n"):
            data += sock.recv(4096)
        # Nothing follows the head: the next request's response comes next.
        sock.sendall(b"GET /size?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"x"
    head_headers = dict(
        (line.split(":", 1)[0].lower(), line.split(":", 1)[1].strip())
        for line in data.decode().split("\r\n")[1:]
        if line
    )
    for name in ("content-encoding", "content-length", "vary", "content-type"):
        assert head_headers[name] == get_headers[name]


def test_not_acceptable(serve) -> None:
    server = serve(handler)
    assert get(server.port, "/compressed", "identity;q=0, br")[0] == 406
    status, _, body = get(server.port, "/compressed", "identity;q=0, gzip")
    assert status == 200 and gzip.decompress(body) == ALPHABET


def test_curl_compressed() -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed by the tests (Debian package curl)"
    server = mummy.Server(handler, workers=2)
    server.start(0, "127.0.0.1")
    try:
        out = subprocess.run(
            [curl, "-sS", "--compressed", "-D", "-", f"http://127.0.0.1:{server.port}/json"],
            capture_output=True,
            timeout=30,
            check=True,
        )
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        assert b"content-encoding: " in head.lower()
        assert body == JSON
    finally:
        server.close()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
    ],
)
def test_request_bodies_are_decoded(serve, coding, encode) -> None:
    server = serve(handler)
    payload = encode(JSON)
    with connect(server.port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (coding.encode(), len(payload))
            + payload
        )
        assert read_response(sock)[2] == JSON


def test_request_body_bombs_and_unknown_codings(serve) -> None:
    server = serve(handler, max_body_len=1 << 20)
    obj = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(obj.compress(bytes(1 << 20)) for _ in range(64)) + obj.flush()
    for coding, payload, status in [("gzip", bomb, 413), ("br", b"abc", 415)]:
        response = exchange(
            server.port,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (coding.encode(), len(payload))
            + payload,
        )
        assert status_of(response) == status
    # The server is fine afterwards.
    assert get(server.port, "/size?n=3", None)[2] == b"xxx"


def test_compression_can_be_turned_off(serve) -> None:
    server = serve(handler, compress=False)
    _, headers, body = get(server.port, "/compressed", "gzip")
    assert "content-encoding" not in headers and "vary" not in headers and body == ALPHABET
