"""Files over real sockets: `request.respond_file` and `mummy.StaticFiles` (Range and
If-Range, validators and 304s, HEAD, 405, index files, dotfiles, precompressed
siblings chosen by Accept-Encoding, Content-Type from the built-in table), over
plaintext HTTP/1.1 (os.sendfile on the IO thread), HTTP/2 and TLS; a file truncated
while sent, slow readers holding no worker and no memory, curl; and WSGI's
`wsgi.file_wrapper` (Flask's `send_file`, with Werkzeug's own Range)."""

import gzip
import hashlib
import http.client
import io
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import zstandard
from flask import Flask, send_file

import mummy
from mummy.wsgi import WSGIAdapter
from tests.integration.test_streaming import Head, Wire, open_wire, request_bytes, rss_bytes
from tests.integration.test_tls import cert  # noqa: F401  (the module-scoped fixture)
from tests.servers import HANG_S, serving, wait_for

Serve = Callable[..., mummy.Server]
Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]

DATA = bytes(range(256)) * 4  # data.bin: 1 KiB whose bytes say where they are
MTIME = 1_700_000_000  # every file's modification time: dates the tests can name
LAST_MODIFIED = formatdate(MTIME, usegmt=True)
DOC = b"a document that compresses well. " * 200
BIG_LEN = 3 * 1024 * 1024 + 12345  # not a multiple of any chunk size


class Tree(NamedTuple):
    root: Path
    big: bytes  # big.bin's content


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    root = tmp_path_factory.mktemp("public")
    big = os.urandom(BIG_LEN)
    write(root / "data.bin", DATA)
    write(root / "big.bin", big)
    write(root / "empty.txt", b"")
    write(root / "doc.txt", DOC)
    write(root / "doc.txt.gz", gzip.compress(DOC, mtime=0))
    write(root / "doc.txt.zst", zstandard.ZstdCompressor().compress(DOC))
    write(root / "only_gz.txt", DOC)
    write(root / "only_gz.txt.gz", gzip.compress(DOC, mtime=0))
    write(root / "index.html", b"<h1>root index</h1>")
    write(root / "sub" / "index.html", b"<h1>sub index</h1>")
    write(root / "sub" / "home.htm", b"<h1>sub home</h1>")
    write(root / "noindex" / "file.txt", b"in noindex")
    write(root / ".hidden", b"a dotfile")
    write(root / ".dotdir" / "file.txt", b"in a dot-directory")
    for name in ("style.css", "app.js", "page.html", "data.json", "mod.wasm", "archive.tar.gz"):
        write(root / name, b"content of " + name.encode())
    os.mkfifo(root / "fifo")
    return Tree(root, big)


def fetch(port: int, target: str, *fields: str, method: str = "GET") -> tuple[Head, bytes]:
    """One request on a new connection, sent raw (no client rewrites the target or
    adds fields); the head and the body its Content-Length delimits."""
    wire = open_wire(port, request_bytes(target, *fields, method=method))
    with wire.sock:
        head = wire.head()
        no_body = method == "HEAD" or head.status == 304
        return head, b"" if no_body else wire.exactly(int(head.fields["content-length"]))


def file_server(serve: Serve, tree: Tree, **options: Any) -> int:
    """A server whose handler is StaticFiles(tree.root, **options) itself."""
    return serve(mummy.StaticFiles(tree.root, **options)).port


@pytest.fixture
def port(serve: Serve, tree: Tree) -> int:
    return file_server(serve, tree)


# --- Range -------------------------------------------------------------------------------

N = len(DATA)


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=5-", 5, N - 1),
        ("bytes=-10", N - 10, N - 1),
        ("bytes=0-0", 0, 0),
        (f"bytes={N - 1}-{N - 1}", N - 1, N - 1),
        (f"bytes={N - 1}-", N - 1, N - 1),
        (f"bytes=1000-{N * 10}", 1000, N - 1),  # the end is clipped to the file's
        (f"bytes=-{N * 10}", 0, N - 1),  # a suffix longer than the file: all of it
        ("BYTES = 3 - 4", 3, 4),  # the unit is case-insensitive; spaces around
    ],
)
def test_one_range_gets_a_206(port: int, value: str, first: int, last: int) -> None:
    head, body = fetch(port, "/data.bin", f"Range: {value}")
    assert head.status == 206, head.raw
    assert head.fields["content-range"] == f"bytes {first}-{last}/{N}"
    assert head.fields["content-length"] == str(last - first + 1)
    assert head.fields["accept-ranges"] == "bytes"
    assert body == DATA[first : last + 1]


@pytest.mark.parametrize(
    "value",
    [
        "bytes=abc",
        "bytes=5",
        "bytes=9-5",  # last before first: invalid (RFC 9110 §14.1.1)
        "bytes=--5",
        "bytes=0x1-",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits are not DIGIT
        "items=0-9",
        "bytes",
        "=0-9",
        "bytes=0-9,20-29",  # several ranges: the whole file instead
        "bytes=0-0,-1",
    ],
)
def test_a_range_that_is_not_one_valid_bytes_range_is_ignored(port: int, value: str) -> None:
    head, body = fetch(port, "/data.bin", f"Range: {value}")
    assert head.status == 200, head.raw
    assert "content-range" not in head.fields
    assert head.fields["content-length"] == str(N) and body == DATA


@pytest.mark.parametrize("value", [f"bytes={N}-", f"bytes={N * 2}-{N * 3}", "bytes=-0"])
def test_an_unsatisfiable_range_gets_a_416(port: int, value: str) -> None:
    head, body = fetch(port, "/data.bin", f"Range: {value}")
    assert head.status == 416, head.raw
    assert head.fields["content-range"] == f"bytes */{N}"
    assert DATA not in body


@pytest.mark.parametrize("value", ["bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000])
def test_a_range_with_a_huge_number_is_not_a_server_error(port: int, value: str) -> None:
    # More digits than int() converts by default (sys.get_int_max_str_digits: 4300).
    head, body = fetch(port, "/data.bin", f"Range: {value}")
    if value.endswith("-"):  # a first byte past the end
        assert head.status == 416, head.raw
    else:  # a suffix longer than the file: all of it (or the field ignored)
        assert head.status in (200, 206), head.raw
        assert body == DATA


def validators(port: int, target: str = "/data.bin", *fields: str) -> tuple[str, str]:
    head, _ = fetch(port, target, *fields)
    assert head.status == 200, head.raw
    return head.fields["etag"], head.fields["last-modified"]


def test_if_range_with_the_etag_or_the_date_gets_the_range(port: int) -> None:
    etag, last_modified = validators(port)
    for if_range in (etag, last_modified):
        head, body = fetch(port, "/data.bin", "Range: bytes=0-9", f"If-Range: {if_range}")
        assert head.status == 206 and body == DATA[:10], (if_range, head.raw)


def test_if_range_that_does_not_match_strongly_gets_the_whole_file(port: int) -> None:
    etag, _ = validators(port)
    other_date = formatdate(MTIME - 3600, usegmt=True)
    for if_range in ('"another"', f"W/{etag}", other_date, "not a validator"):
        head, body = fetch(port, "/data.bin", "Range: bytes=0-9", f"If-Range: {if_range}")
        assert head.status == 200 and body == DATA, (if_range, head.raw)


def test_range_over_a_zero_length_file_is_unsatisfiable(port: int) -> None:
    head, body = fetch(port, "/empty.txt", "Range: bytes=0-")
    assert head.status == 416 and head.fields["content-range"] == "bytes */0"
    head, body = fetch(port, "/empty.txt")
    assert head.status == 200 and head.fields["content-length"] == "0" and body == b""


def test_pipelined_files_on_one_connection_and_http_1_0(port: int, tree: Tree) -> None:
    wire = open_wire(
        port,
        request_bytes("/big.bin"),
        request_bytes("/data.bin", "Range: bytes=10-19"),
        request_bytes("/empty.txt"),
        request_bytes("/missing"),
        request_bytes("/data.bin"),
    )
    with wire.sock:
        for status, body in (
            (200, tree.big),
            (206, DATA[10:20]),
            (200, b""),
            (404, None),
            (200, DATA),
        ):
            head = wire.head()
            assert head.status == status
            got = wire.exactly(int(head.fields["content-length"]))
            assert body is None or got == body
    wire = open_wire(port, request_bytes("/big.bin", version="HTTP/1.0"))
    with wire.sock:
        head = wire.head()
        assert head.fields["connection"] == "close"
        assert until_closed(wire) == tree.big  # all of it, then the close


def test_range_with_http_client_and_httpx(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_S)
    try:
        conn.request("GET", "/data.bin", headers={"Range": "bytes=100-199"})
        response = conn.getresponse()
        assert response.status == 206 and response.read() == DATA[100:200]
        conn.request("GET", "/data.bin", headers={"Range": "bytes=-1"})  # the same connection
        response = conn.getresponse()
        assert response.status == 206 and response.read() == DATA[-1:]
    finally:
        conn.close()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as client:
        response = client.get("/data.bin", headers={"Range": "bytes=10-"})
        assert response.status_code == 206 and response.content == DATA[10:]


# --- validators --------------------------------------------------------------------------


def test_etag_is_strong_and_last_modified_is_the_mtime(port: int) -> None:
    etag, last_modified = validators(port)
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert last_modified == LAST_MODIFIED
    assert validators(port) == (etag, last_modified)  # stable
    assert validators(port, "/big.bin")[0] != etag  # per file


@pytest.mark.parametrize(
    "make",
    [
        lambda etag: etag,
        lambda etag: f'"other", {etag}',
        lambda etag: f'"a",{etag} ,"b"',
        lambda etag: "*",
        lambda etag: f"W/{etag}",  # If-None-Match compares weakly (RFC 9110 §13.1.2)
    ],
    ids=["same", "in-a-list", "list-without-spaces", "star", "weak"],
)
def test_if_none_match_that_matches_gets_a_304(port: int, make: Callable[[str], str]) -> None:
    etag, last_modified = validators(port)
    for method in ("GET", "HEAD"):
        head, _ = fetch(port, "/data.bin", f"If-None-Match: {make(etag)}", method=method)
        assert head.status == 304, head.raw
        assert head.fields["etag"] == etag and head.fields["last-modified"] == last_modified


def test_a_304_carries_no_content_length_but_the_files(port: int) -> None:
    # RFC 9110 §8.6: a 304's Content-Length, if any, is the one the 200 would carry.
    etag, _ = validators(port)
    head, _ = fetch(port, "/data.bin", f"If-None-Match: {etag}")
    assert head.status == 304
    assert head.fields.get("content-length", str(N)) == str(N), head.raw


def test_if_none_match_that_does_not_match_gets_the_file(port: int) -> None:
    etag, _ = validators(port)
    for value in ('"other"', '"a", "b"', etag[:-2] + '"'):
        head, body = fetch(port, "/data.bin", f"If-None-Match: {value}")
        assert head.status == 200 and body == DATA, value


def test_if_modified_since(port: int) -> None:
    later = formatdate(MTIME + 3600, usegmt=True)
    earlier = formatdate(MTIME - 1, usegmt=True)
    for since, status in ((LAST_MODIFIED, 304), (later, 304), (earlier, 200), ("garbage", 200)):
        head, body = fetch(port, "/data.bin", f"If-Modified-Since: {since}")
        assert head.status == status, (since, head.raw)
        assert body == (DATA if status == 200 else b"")


def test_if_none_match_takes_precedence_over_if_modified_since(port: int) -> None:
    # RFC 9110 §13.1.3: with If-None-Match present, If-Modified-Since is ignored.
    head, body = fetch(
        port, "/data.bin", 'If-None-Match: "other"', f"If-Modified-Since: {LAST_MODIFIED}"
    )
    assert head.status == 200 and body == DATA


def test_each_precompressed_variant_has_its_own_etag(port: int) -> None:
    plain = validators(port, "/doc.txt", "Accept-Encoding: identity")[0]
    gz = validators(port, "/doc.txt", "Accept-Encoding: gzip")[0]
    zst = validators(port, "/doc.txt", "Accept-Encoding: zstd")[0]
    assert len({plain, gz, zst}) == 3, (plain, gz, zst)
    # Each matches its own variant only.
    head, _ = fetch(port, "/doc.txt", "Accept-Encoding: gzip", f"If-None-Match: {gz}")
    assert head.status == 304
    head, body = fetch(port, "/doc.txt", "Accept-Encoding: identity", f"If-None-Match: {gz}")
    assert head.status == 200 and body == DOC


# --- HEAD, methods -----------------------------------------------------------------------


@pytest.mark.parametrize("fields", [(), ("Accept-Encoding: gzip",)], ids=["plain", "gzip"])
def test_head_has_the_get_fields_and_no_body(port: int, fields: tuple[str, ...]) -> None:
    target = "/doc.txt" if fields else "/data.bin"
    # HEAD then GET on one connection: HEAD's head is followed at once by GET's.
    wire = open_wire(
        port, request_bytes(target, *fields, method="HEAD"), request_bytes(target, *fields)
    )
    with wire.sock:
        head = wire.head()
        get = wire.head()
    assert head.status == get.status == 200
    assert {k: v for k, v in head.fields.items() if k != "date"} == {
        k: v for k, v in get.fields.items() if k != "date"
    }, (head.raw, get.raw)


def test_head_ignores_range(port: int) -> None:
    # RFC 9110 §14.2: range handling is defined for GET only.
    head, _ = fetch(port, "/data.bin", "Range: bytes=0-9", method="HEAD")
    assert head.status == 200 and "content-range" not in head.fields
    assert head.fields["content-length"] == str(N)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_get_405_with_allow(port: int, method: str) -> None:
    head, body = fetch(port, "/data.bin", "Content-Length: 0", method=method)
    assert head.status == 405, head.raw
    assert head.fields["allow"] == "GET, HEAD"
    assert DATA not in body


# --- index, listings, dotfiles -----------------------------------------------------------


def test_a_directory_serves_its_index_and_never_a_listing(port: int) -> None:
    for target, body in (
        ("/", b"<h1>root index</h1>"),
        ("/sub/", b"<h1>sub index</h1>"),
        ("/sub", b"<h1>sub index</h1>"),
    ):
        head, got = fetch(port, target)
        assert head.status == 200 and got == body, target
        assert head.fields["content-type"] == "text/html"
    for target in ("/noindex/", "/noindex"):
        head, got = fetch(port, target)
        assert head.status == 404 and b"file.txt" not in got, target


def test_index_none_and_another_index_name(serve: Serve, tree: Tree) -> None:
    port = file_server(serve, tree, index=None)
    assert fetch(port, "/sub/")[0].status == 404
    assert fetch(port, "/")[0].status == 404
    assert fetch(port, "/sub/index.html")[1] == b"<h1>sub index</h1>"
    port = file_server(serve, tree, index="home.htm")
    assert fetch(port, "/sub/")[1] == b"<h1>sub home</h1>"
    assert fetch(port, "/")[0].status == 404  # the root has no home.htm


@pytest.mark.parametrize(("dotfiles", "status"), [(False, 404), (True, 200)], ids=["off", "on"])
def test_dotfiles(serve: Serve, tree: Tree, dotfiles: bool, status: int) -> None:
    port = file_server(serve, tree, dotfiles=dotfiles)
    for target, content in (("/.hidden", b"a dotfile"), ("/.dotdir/file.txt", b"in a dot")):
        head, body = fetch(port, target)
        assert head.status == status, target
        assert body.startswith(content) == dotfiles


def test_a_prefix_is_stripped(serve: Serve, tree: Tree) -> None:
    router = mummy.Router()
    router.get("/static/**", mummy.StaticFiles(tree.root, prefix="/static/"))
    port = serve(router).port
    assert fetch(port, "/static/data.bin")[1] == DATA
    assert fetch(port, "/static/sub/")[1] == b"<h1>sub index</h1>"
    assert fetch(port, "/data.bin")[0].status == 404
    head, _ = fetch(port, "/static/data.bin", method="HEAD")  # the Router's HEAD via GET
    assert head.status == 200 and head.fields["content-length"] == str(N)


# --- precompressed siblings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        (None, None),
        ("identity", None),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, zstd", "zstd"),  # equal q: zstd first
        ("zstd;q=0.5, gzip", "gzip"),
        ("gzip;q=0.9, zstd;q=0.8", "gzip"),
        ("zstd;q=0, gzip", "gzip"),
        ("gzip;q=0", None),
        ("gzip;q=0, zstd;q=0", None),
        ("*", "zstd"),
        ("*;q=0.5, gzip", "gzip"),
        ("br", None),
        ("GZIP", "gzip"),
    ],
)
def test_precompressed_variant_by_accept_encoding(
    port: int, tree: Tree, accept: str | None, coding: str | None
) -> None:
    fields = (f"Accept-Encoding: {accept}",) if accept is not None else ()
    head, body = fetch(port, "/doc.txt", *fields)
    assert head.status == 200, head.raw
    assert head.fields.get("content-encoding") == coding, head.raw
    assert head.fields["vary"] == "Accept-Encoding"
    assert head.fields["content-type"] == "text/plain"
    suffix = {None: "", "gzip": ".gz", "zstd": ".zst"}[coding]
    assert body == (tree.root / f"doc.txt{suffix}").read_bytes()  # the file, as it is
    assert head.fields["content-length"] == str(len(body))


def test_a_sibling_of_one_coding_only(port: int) -> None:
    head, body = fetch(port, "/only_gz.txt", "Accept-Encoding: zstd, gzip;q=0.1")
    assert head.fields["content-encoding"] == "gzip" and gzip.decompress(body) == DOC
    head, body = fetch(port, "/only_gz.txt", "Accept-Encoding: zstd")
    assert "content-encoding" not in head.fields and body == DOC
    assert head.fields["vary"] == "Accept-Encoding"
    head, _ = fetch(port, "/data.bin", "Accept-Encoding: gzip")  # no sibling: no Vary
    assert "vary" not in head.fields and "content-encoding" not in head.fields


def test_a_range_over_a_precompressed_variant_is_a_range_of_its_bytes(port: int) -> None:
    compressed = gzip.compress(DOC, mtime=0)
    head, body = fetch(port, "/doc.txt", "Accept-Encoding: gzip", "Range: bytes=0-9")
    assert head.status == 206 and head.fields["content-encoding"] == "gzip"
    assert head.fields["content-range"] == f"bytes 0-9/{len(compressed)}"
    assert body == compressed[:10]


def test_a_precompressed_file_asked_for_by_name_is_just_a_file(port: int) -> None:
    head, body = fetch(port, "/doc.txt.gz", "Accept-Encoding: gzip")
    assert head.fields["content-type"] == "application/gzip"
    assert "content-encoding" not in head.fields
    assert body == gzip.compress(DOC, mtime=0)


def test_httpx_decodes_the_variant_it_gets(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as client:
        response = client.get("/doc.txt", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip" and response.content == DOC


# --- Content-Type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("style.css", "text/css"),
        ("app.js", "text/javascript"),
        ("page.html", "text/html"),
        ("data.json", "application/json"),
        ("mod.wasm", "application/wasm"),
        ("archive.tar.gz", "application/gzip"),  # a gzip file, not a gzip-encoded tar
        ("data.bin", "application/octet-stream"),
        ("doc.txt", "text/plain"),
    ],
)
def test_content_type_from_the_built_in_table(port: int, name: str, content_type: str) -> None:
    head, body = fetch(port, f"/{name}", "Accept-Encoding: gzip")
    assert head.status == 200
    assert head.fields["content-type"] == content_type
    if name not in ("doc.txt", "data.bin"):
        assert "content-encoding" not in head.fields, head.raw
        assert body == b"content of " + name.encode()  # what the file holds, as is


def test_respond_file_headers_add_to_or_replace_the_files(serve: Serve, tree: Tree) -> None:
    def handler(request: mummy.Request) -> None:
        request.respond_file(
            tree.root / "style.css",
            {"Cache-Control": "max-age=60", "Content-Type": "text/css; charset=utf-8"},
        )

    head, body = fetch(serve(handler).port, "/")
    assert head.fields["cache-control"] == "max-age=60"
    assert head.fields["content-type"] == "text/css; charset=utf-8"
    assert body == b"content of style.css"


# --- respond_file: what is not a regular file -------------------------------------------


def test_respond_file_404s_what_is_not_a_regular_file(
    serve: Serve, tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mummy")

    def handler(request: mummy.Request) -> None:
        request.respond_file(tree.root / request.path.lstrip("/"))

    port = serve(handler, workers=2).port
    for target in ("/fifo", "/sub", "/missing.txt", "/"):
        head, _ = fetch(port, target)
        assert head.status == 404, (target, head.raw)
    # The FIFO did not hang a worker: both still answer.
    for _ in range(4):
        assert fetch(port, "/data.bin")[1] == DATA
    assert wait_for(
        lambda: any(r.levelno == logging.DEBUG and "fifo" in r.getMessage() for r in caplog.records)
    )


def test_respond_file_after_a_response_raises_mummy_error(serve: Serve, tree: Tree) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def handler(request: mummy.Request) -> None:
        request.respond(200, None, "first")
        for name in ("empty.txt", "data.bin"):
            try:
                request.respond_file(tree.root / name)
            except Exception as exc:  # the test looks at which
                errors.append(exc)
        done.set()

    _, body = fetch(serve(handler).port, "/")
    assert body == b"first"
    assert done.wait(HANG_S)
    assert [type(exc) for exc in errors] == [mummy.MummyError] * 2, errors


# --- HTTP/2 and TLS ----------------------------------------------------------------------


def check_downloads(client: httpx.Client, tree: Tree, version: str) -> None:
    response = client.get("/big.bin")
    assert response.http_version == version
    assert response.status_code == 200 and response.content == tree.big
    response = client.get("/big.bin", headers={"Range": "bytes=1000000-2999999"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 1000000-2999999/{BIG_LEN}"
    assert response.content == tree.big[1000000:3000000]
    response = client.get("/data.bin", headers={"Range": "bytes=-10"})
    assert response.status_code == 206 and response.content == DATA[-10:]
    response = client.head("/big.bin")
    assert response.headers["content-length"] == str(BIG_LEN) and response.content == b""
    etag = response.headers["etag"]
    assert client.get("/big.bin", headers={"If-None-Match": etag}).status_code == 304
    response = client.get("/doc.txt", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip" and response.content == DOC
    assert client.get("/empty.txt").content == b""


def test_http2_downloads(serve: Serve, tree: Tree) -> None:
    port = file_server(serve, tree)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", http2=True, http1=False, timeout=HANG_S
    ) as client:
        check_downloads(client, tree, "HTTP/2")


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_tls_downloads(tree: Tree, cert: tuple[str, str], http2: bool) -> None:  # noqa: F811
    context = ssl.create_default_context(cafile=cert[0])
    server = mummy.Server(mummy.StaticFiles(tree.root), workers=4)
    with (
        serving(server, certfile=cert[0], keyfile=cert[1]),
        httpx.Client(
            base_url=f"https://127.0.0.1:{server.port}", verify=context, http2=http2, timeout=HANG_S
        ) as client,
    ):
        check_downloads(client, tree, "HTTP/2" if http2 else "HTTP/1.1")


# --- a file truncated while sent ---------------------------------------------------------

TRUNCATED_LEN = 64 * 1024 * 1024  # far more than the socket buffers on both sides hold


def small_window_socket(port: int, cafile: str | None = None) -> socket.socket:
    """A client socket that offers a small receive window; with `cafile`, over TLS
    (HTTP/1.1 by ALPN) to a server with that certificate."""
    sock = socket.socket()
    # Before connect, so that the window offered is small: the kernel takes little.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(HANG_S)
    sock.connect(("127.0.0.1", port))
    if cafile is None:
        return sock
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    return context.wrap_socket(sock, server_hostname="localhost")


def until_closed(wire: Wire) -> bytes:
    """What comes until the server closes: a FIN, a reset, or (TLS) an EOF without
    close_notify, which is how a cut body ends."""
    while True:
        try:
            data = wire.sock.recv(1 << 16)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not data:
            break
        wire.buf += data
    return wire._take(len(wire.buf))


@pytest.mark.parametrize("tls", [False, True], ids=["sendfile", "tls"])
def test_a_file_truncated_while_sent_closes_the_connection(
    tmp_path: Path,
    cert: tuple[str, str],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    tls: bool,
) -> None:
    caplog.set_level(logging.WARNING, logger="mummy")
    path = tmp_path / "shrinking.bin"
    with path.open("wb") as file:
        file.truncate(TRUNCATED_LEN)  # sparse: zeros that take no disk

    def handler(request: mummy.Request) -> None:
        request.respond_file(path)

    tls_options = {"certfile": cert[0], "keyfile": cert[1]} if tls else {}
    with serving(mummy.Server(handler, workers=2), **tls_options) as server:
        sock = small_window_socket(server.port, cert[0] if tls else None)
        with sock:
            sock.sendall(request_bytes("/") + request_bytes("/"))  # the second never answered
            wire = Wire(sock)
            head = wire.head()
            assert head.status == 200
            assert head.fields["content-length"] == str(TRUNCATED_LEN)
            received = len(wire.exactly(100_000))
            os.truncate(path, 1024 * 1024)  # less than what has gone out already
            rest = until_closed(wire)  # a server that never closes times out here
            received += len(rest)
            assert received < TRUNCATED_LEN, received
            assert b"HTTP/1.1" not in rest[-1000:]  # no second response after a cut body
        if not tls:
            assert wait_for(lambda: any("truncated" in r.getMessage() for r in caplog.records))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("tls", [False, True], ids=["sendfile", "tls"])
def test_a_client_leaving_mid_file_closes_the_file(
    tmp_path: Path,
    cert: tuple[str, str],  # noqa: F811
    tls: bool,
) -> None:
    with (tmp_path / "big.bin").open("wb") as file:
        file.truncate(TRUNCATED_LEN)
    tls_options = {"certfile": cert[0], "keyfile": cert[1]} if tls else {}
    server = mummy.Server(mummy.StaticFiles(tmp_path), workers=2)
    with serving(server, **tls_options):
        before = open_fds()
        for _ in range(20):
            sock = small_window_socket(server.port, cert[0] if tls else None)
            with sock:
                sock.sendall(request_bytes("/big.bin"))
                wire = Wire(sock)
                assert wire.head().status == 200
                wire.exactly(10_000)
        # Each left with its file open on the server: the server closes them all.
        assert wait_for(lambda: open_fds() <= before), (before, open_fds())


# --- slow readers ------------------------------------------------------------------------

SLOW_LEN = 50 * 1024 * 1024


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def test_slow_readers_of_a_big_file_hold_no_worker_and_no_memory(
    serve: Serve, tmp_path: Path
) -> None:
    path = tmp_path / "fifty.bin"
    with path.open("wb") as file:
        for _ in range(SLOW_LEN >> 20):
            file.write(os.urandom(1 << 20))
    expected = sha256_of(path)
    router = mummy.Router()
    router.get("/files/**", mummy.StaticFiles(tmp_path, prefix="/files/"))
    router.get("/plain", lambda request: request.respond(200, None, "plain"))
    port = serve(router, workers=2).port
    assert fetch(port, "/plain")[1] == b"plain"  # warm up: a worker, a buffer
    before = rss_bytes()
    slow = []
    try:
        for _ in range(10):
            sock = small_window_socket(port)
            sock.sendall(request_bytes("/files/fifty.bin"))
            slow.append(Wire(sock))
        for wire in slow:
            head = wire.head()  # each has started; none reads on
            assert head.status == 200 and head.fields["content-length"] == str(SLOW_LEN)
        # Another client is served at once: the workers are free (Wire bounds the wait).
        assert fetch(port, "/plain")[1] == b"plain"
        # A full download while the ten stall: connections take turns on the IO thread.
        wire = open_wire(port, request_bytes("/files/fifty.bin"))
        with wire.sock:
            head = wire.head()
            assert head.fields["content-length"] == str(SLOW_LEN)
            first = wire._take(len(wire.buf))  # what came with the head
            hasher, left = hashlib.sha256(first), SLOW_LEN - len(first)
            while left:
                data = wire.sock.recv(min(1 << 20, left))
                assert data, f"closed with {left} bytes to go"
                hasher.update(data)
                left -= len(data)
        assert hasher.hexdigest() == expected
        grown = rss_bytes() - before
        assert grown < 50 << 20, f"RSS grew {grown >> 20} MiB with 10 stalled downloads"
        assert fetch(port, "/plain")[1] == b"plain"
    finally:
        for wire in slow:
            wire.sock.close()


# --- curl --------------------------------------------------------------------------------


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("curl")
    assert exe, "curl is needed by the tests"
    return subprocess.run([exe, "-sS", "--fail", *args], capture_output=True, timeout=HANG_S)


def test_curl_downloads(port: int, tree: Tree, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "big.bin"
    done = curl("-o", str(out), f"{base}/big.bin")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == tree.big
    done = curl("--http2-prior-knowledge", "-o", str(out), f"{base}/big.bin")
    assert done.returncode == 0 and out.read_bytes() == tree.big, done.stderr
    done = curl("-r", "100-199", f"{base}/big.bin")
    assert done.returncode == 0 and done.stdout == tree.big[100:200], done.stderr
    done = curl("--compressed", f"{base}/doc.txt")
    assert done.returncode == 0 and done.stdout == DOC, done.stderr
    done = curl("-I", f"{base}/big.bin")
    assert f"content-length: {BIG_LEN}".encode() in done.stdout.lower(), done.stdout
    # Resuming a download: -C - asks for the bytes after what the file holds.
    out.write_bytes(tree.big[:1_000_000])
    done = curl("-C", "-", "-o", str(out), f"{base}/big.bin")
    assert done.returncode == 0 and out.read_bytes() == tree.big, done.stderr


# --- WSGI --------------------------------------------------------------------------------


def flask_files(tree: Tree) -> Flask:
    app = Flask(__name__)

    @app.get("/send/<name>")
    def send(name: str) -> Any:
        return send_file(tree.root / name, mimetype="application/octet-stream")

    return app


def test_flask_send_file_through_the_adapter(serve: Serve, tree: Tree) -> None:
    port = serve(WSGIAdapter(flask_files(tree))).port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as client:
        response = client.get("/send/big.bin")
        assert response.status_code == 200 and response.content == tree.big
        assert response.headers["content-length"] == str(BIG_LEN)
        # Werkzeug's own Range handling, through its _RangeWrapper (no descriptor).
        response = client.get("/send/big.bin", headers={"Range": "bytes=1000-1999"})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes 1000-1999/{BIG_LEN}"
        assert response.content == tree.big[1000:2000]
        etag = client.get("/send/data.bin").headers["etag"]
        assert client.get("/send/data.bin", headers={"If-None-Match": etag}).status_code == 304
        assert client.head("/send/data.bin").headers["content-length"] == str(N)
    head, body = fetch(port, "/send/big.bin")  # raw: the exact framing
    assert head.fields["content-length"] == str(BIG_LEN) and body == tree.big


class UnreadFile(io.FileIO):
    """A file whose reads are counted: the adapter is to send it from its descriptor."""

    reads = 0

    def read(self, size: int = -1) -> bytes:
        UnreadFile.reads += 1
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        UnreadFile.reads += 1
        return super().readinto(buffer)


def test_file_wrapper_sends_from_the_descriptor_and_from_the_position(
    serve: Serve, tree: Tree
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Any:
        file = UnreadFile(tree.root / "big.bin")
        offset = int(environ["QUERY_STRING"] or 0)
        file.seek(offset)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](file)

    UnreadFile.reads = 0
    port = serve(WSGIAdapter(app)).port
    head, body = fetch(port, "/")
    assert head.fields["content-length"] == str(BIG_LEN) and body == tree.big
    head, body = fetch(port, "/?1000000")
    assert body == tree.big[1000000:]
    assert UnreadFile.reads == 0


def test_file_wrapper_keeps_the_app_content_length(serve: Serve, tree: Tree) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return environ["wsgi.file_wrapper"](open(tree.root / "data.bin", "rb"))

    head, body = fetch(serve(WSGIAdapter(app)).port, "/")
    assert head.fields["content-length"] == "100" and body == DATA[:100]


def test_file_wrapper_over_bytes_io_is_iterated(serve: Serve) -> None:
    closed = threading.Event()

    class Closing(io.BytesIO):
        def close(self) -> None:
            closed.set()
            super().close()

    payload = os.urandom(100_000)

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](Closing(payload), 4096)

    port = serve(WSGIAdapter(app)).port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as client:
        assert client.get("/").content == payload
    assert closed.wait(HANG_S)  # PEP 3333: close() is called


def test_file_wrapper_over_tls_and_http2(
    tree: Tree,
    cert: tuple[str, str],  # noqa: F811
) -> None:
    app = flask_files(tree)
    context = ssl.create_default_context(cafile=cert[0])
    server = mummy.Server(WSGIAdapter(app), workers=4)
    with serving(server, certfile=cert[0], keyfile=cert[1]):
        for http2 in (False, True):
            with httpx.Client(
                base_url=f"https://127.0.0.1:{server.port}",
                verify=context,
                http2=http2,
                timeout=HANG_S,
            ) as client:
                response = client.get("/send/big.bin")
                assert response.content == tree.big, response.http_version


def test_last_modified_parses_and_matches_the_file(port: int, tree: Tree) -> None:
    _, last_modified = validators(port, "/big.bin")
    parsed = parsedate_to_datetime(last_modified).timestamp()
    assert parsed == int((tree.root / "big.bin").stat().st_mtime)
