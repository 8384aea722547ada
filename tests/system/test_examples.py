"""Each example run as a script (a subprocess, PORT set to a free port) and asked
what it serves, with raw sockets, requests and curl. (The WebSocket examples are in
test_websocket_examples.py.)"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.client import SseBlock, SseClient, exchange
from tests.servers import ROOT, ServerProcess, wait_for

EXAMPLES = ROOT / "examples"


@contextlib.contextmanager
def running(
    name: str, cwd: Path = ROOT, stop: int = signal.SIGINT, **env: str
) -> Iterator[tuple[str, ServerProcess]]:
    """Start examples/NAME.py; yield (base URL, process); then stop it with `stop`
    (SIGINT: what Ctrl-C sends) and check that it exits 0."""
    with ServerProcess(
        [sys.executable, str(EXAMPLES / f"{name}.py")], cwd=cwd, env={**os.environ, **env}
    ) as server:
        yield f"http://localhost:{server.port}", server
        assert server.stop(stop) == 0, server.output


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def raw(url: str, method: str, target: str) -> bytes:
    request = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    return exchange(port_of(url), request.encode())


def test_basic_router() -> None:
    with running("basic_router") as (url, _):
        response = requests.get(f"{url}/", timeout=10)
        assert (response.status_code, response.text) == (200, "Hello, World!")
        assert response.headers["Content-Type"] == "text/plain"
        response = requests.post(f"{url}/", timeout=10)
        assert (response.status_code, response.headers["Allow"]) == (405, "GET, HEAD")
        response = requests.get(f"{url}/other", timeout=10)
        assert (response.status_code, response.text) == (404, "<h1>Not Found</h1>")
        head = raw(url, "HEAD", "/")
        assert b"Content-Length: 13\r\n" in head and head.endswith(b"\r\n\r\n")


def test_basic_router_path_params() -> None:
    with running("basic_router_path_params") as (url, _):
        assert requests.get(f"{url}/objects/123", timeout=10).text == "Object: 123"
        response = requests.get(f"{url}/objects/%C3%A9t%C3%A9", timeout=10)
        assert response.content == "Object: été".encode()
        assert requests.get(f"{url}/objects/1/2", timeout=10).status_code == 404


def test_basic_router_query_params() -> None:
    with running("basic_router_query_params") as (url, _):
        assert requests.get(f"{url}/search?name=foo", timeout=10).text == "Name: foo"
        response = requests.get(f"{url}/search", params={"name": "a b&c"}, timeout=10)
        assert response.text == "Name: a b&c"
        assert requests.get(f"{url}/search", timeout=10).text == "Name: "


def test_basic_custom_404() -> None:
    with running("basic_custom_404") as (url, _):
        assert requests.get(f"{url}/", timeout=10).text == "Hello, World!"
        response = requests.get(f"{url}/nope", timeout=10)
        assert (response.status_code, response.text) == (404, "<h1>I'm not here</h1>")
        assert response.headers["Content-Type"] == "text/html"
        head = raw(url, "HEAD", "/nope")
        assert head.startswith(b"HTTP/1.1 404 ") and b"Content-Length: 21\r\n" in head
        assert head.endswith(b"\r\n\r\n")


def test_basic_multipart() -> None:
    with running("basic_multipart") as (url, proc):
        assert b'enctype="multipart/form-data"' in requests.get(f"{url}/", timeout=10).content
        response = requests.post(
            f"{url}/multipart",
            data={"field": "value", "empty": ""},
            files={"upload": ("notes.txt", b"some\r\nbytes", "text/plain")},
            timeout=10,
        )
        assert (response.status_code, response.text) == (200, "Multipart POST response")
        bad = requests.post(
            f"{url}/multipart",
            data=b"--x\r\nnot a part",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
            timeout=10,
        )
        assert bad.status_code == 400 and "invalid multipart body" in bad.text
        curl = shutil.which("curl")
        assert curl, "curl is needed by the tests (Debian package curl)"
        out = subprocess.run(
            [curl, "-sS", "-F", "from_curl=yes", f"{url}/multipart"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert out.stdout == "Multipart POST response"
    output = proc.output
    assert "field: filename=None has data: True" in output
    assert "empty: filename=None has data: False" in output
    assert "upload: filename='notes.txt' has data: True" in output
    assert "from_curl: filename=None has data: True" in output


def test_basic_database_counts_every_concurrent_increment(tmp_path) -> None:
    database = tmp_path / "counter.sqlite3"
    with running("basic_database", DATABASE=str(database)) as (url, _):
        assert requests.get(f"{url}/get", timeout=10).text == "Count: 0\n"
        failures: list[str] = []

        def increment(times: int) -> None:
            with requests.Session() as session:
                for _ in range(times):
                    response = session.get(f"{url}/inc", timeout=30)
                    if (response.status_code, response.text) != (200, "Done"):
                        failures.append(f"{response.status_code} {response.text}")

        threads = [threading.Thread(target=increment, args=(25,)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert requests.get(f"{url}/get", timeout=10).text == "Count: 400\n"
    # The count is in the file, and survives a restart.
    with running("basic_database", DATABASE=str(database)) as (url, _):
        assert requests.get(f"{url}/get", timeout=10).text == "Count: 400\n"


def test_client_headers() -> None:
    with running("client_headers") as (url, proc):
        response = requests.get(f"{url}/", headers={"X-Hello": "there"}, timeout=10)
        assert response.status_code == 200
        lines = response.text.splitlines()
        assert f"Host: localhost:{port_of(url)}" in lines and "X-Hello: there" in lines
    output = proc.output
    assert f"Host: localhost:{port_of(url)}" in output and "X-Hello: there" in output


@pytest.mark.parametrize(
    ("path", "token", "status", "body"),
    [
        ("/", None, 200, "Hello, World!"),
        ("/me", "abc", 200, "Hello User 123"),
        ("/me/settings", "abc", 200, "Settings for User 123"),
        ("/me", None, 401, "Invalid token"),
        ("/me/settings", "wrong", 401, "Invalid token"),
    ],
)
def test_custom_handler_params(path, token, status, body) -> None:
    headers = {} if token is None else {"Access-Token": token}
    with running("custom_handler_params") as (url, _):
        response = requests.get(f"{url}{path}", headers=headers, timeout=10)
        assert (response.status_code, response.text) == (status, body)


def test_logging_file(tmp_path) -> None:
    with running("logging_file", cwd=tmp_path) as (url, proc):
        log_file = tmp_path / f"{proc.proc.pid}.txt"
        assert requests.get(f"{url}/", timeout=10).text == "Done"
        assert requests.get(f"{url}/info", timeout=10).text == "Done"
        assert requests.get(f"{url}/error", timeout=10).text == "Done"
        # The error line (and the info line queued before it) is on disk before the
        # response is sent: no waiting, no shutdown needed.
        lines = log_file.read_text().splitlines()
        example = [line.split(" mummy.example: ")[1] for line in lines if "mummy.example" in line]
        assert [line.split(" from ")[0] for line in example] == ["info", "error"]
    text = log_file.read_text()
    assert "mummy listening on" in text and "DEBUG" not in text


def test_basic() -> None:
    with running("basic") as (url, _):
        assert exchange(port_of(url), b"GET / HTTP/1.0\r\n\r\n").endswith(b"Hello, World!")
        assert b" 404 " in exchange(port_of(url), b"GET /nope HTTP/1.0\r\n\r\n")
        assert b" 405 " in exchange(port_of(url), b"POST / HTTP/1.0\r\n\r\n")


def test_basic_redirect() -> None:
    with running("basic_redirect", stop=signal.SIGTERM) as (url, _):
        first = exchange(port_of(url), b"GET / HTTP/1.0\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 302 Found") and b"Location: /second" in first
        second = exchange(port_of(url), b"GET /second HTTP/1.0\r\n\r\n")
        assert second.endswith(b"Hello, World!")


def test_wsgi_flask() -> None:
    with running("wsgi_flask") as (base, _):
        assert requests.get(base + "/", timeout=10).text == "Hello from Flask on mummy!\n"
        assert requests.post(base + "/greet", data={"name": "mummy"}, timeout=10).json() == {
            "greeting": "Hello, mummy!"
        }
        assert requests.get(base + "/thread", timeout=10).json()["worker"] != "MainThread"


def test_sse() -> None:
    with running("sse") as (url, proc):
        page = requests.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and 'new EventSource("/events")' in page.text
        assert requests.post(f"{url}/", timeout=10).status_code == 405
        assert requests.get(f"{url}/say", timeout=10).status_code == 405
        assert requests.get(f"{url}/nope", timeout=10).status_code == 404
        port = port_of(url)
        with SseClient(port) as alice, SseClient(port) as bob:
            assert alice.head.startswith(b"HTTP/1.1 200 ")
            assert b"\r\nContent-Type: text/event-stream\r\n" in alice.head
            # A tick reaches only registered streams: after one, a message reaches it too.
            for client in (alice, bob):
                client.read_until(lambda c=client: len(ticks(c)) >= 2)
                first, second = ticks(client)[:2]
                assert int(second.id) == int(first.id) + 1
            say = requests.post(f"{url}/say", data=b"hello\nworld", timeout=10)
            assert (say.status_code, say.text) == (200, "2\n")
            for client in (alice, bob):
                client.read_until(lambda c=client: "hello\nworld" in messages(c))
            alice.close()
            # Once the server has seen alice leave, a message reaches bob alone.
            assert wait_for(
                lambda: requests.post(f"{url}/say", data=b"bye", timeout=10).text == "1\n"
            ), "the closed stream was never dropped"
            bob.read_until(lambda: "bye" in messages(bob))
            with SseClient(port, headers="Last-Event-ID: 5\r\n") as back:
                back.blocks_until(1)
                assert back.blocks()[0].data == "welcome back; the last tick you saw was 5"
            # Ctrl-C with bob's stream open: the process exits 0 and bob's stream ends.
            assert proc.stop(signal.SIGINT) == 0, proc.output
            bob.read_to_end()
    assert "Traceback" not in proc.output, proc.output


def ticks(client: SseClient) -> list[SseBlock]:
    return [block for block in client.blocks() if block.event == "tick"]


def messages(client: SseClient) -> list[str]:
    return [block.data for block in client.blocks() if block.event in (None, "message")]


def test_streaming() -> None:
    with running("streaming") as (url, _):
        curl = shutil.which("curl")
        assert curl, "curl is needed by the tests (Debian package curl)"
        out = subprocess.run(
            [curl, "-N", "-sS", f"{url}/count?n=5"],
            capture_output=True,
            timeout=30,
            check=True,
        )
        assert out.stdout == b"1\n2\n3\n4\n5\n"
        # Each line is sent as it is made: the first comes while the rest are still to come.
        with SseClient(port_of(url), "/count?n=30") as counting:
            assert counting.chunked and b"\r\nContent-Type: text/plain\r\n" in counting.head
            counting.read_until(lambda: counting.body.startswith(b"1\n"))
            assert not counting.ended
            counting.read_until(lambda: counting.ended)
            assert counting.body == "".join(f"{i}\n" for i in range(1, 31)).encode()
        with requests.get(f"{url}/big?mb=3", stream=True, timeout=30) as big:
            assert big.status_code == 200 and "Content-Length" not in big.headers
            body = b"".join(big.iter_content(1 << 16))
        assert body == bytes(range(256)) * 256 * 16 * 3
        assert exchange(port_of(url), b"GET /count?n=3 HTTP/1.0\r\n\r\n").endswith(
            b"\r\n\r\n1\n2\n3\n"
        )
        assert requests.get(f"{url}/count?n=x", timeout=10).status_code == 400
        assert requests.get(f"{url}/big", timeout=10).status_code == 400
        assert requests.post(f"{url}/count?n=1", timeout=10).status_code == 405
        assert requests.get(f"{url}/nope", timeout=10).status_code == 404


def test_static_files() -> None:
    public = EXAMPLES / "public"
    with running("static_files") as (url, _):
        home = requests.get(url + "/", allow_redirects=False, timeout=10)
        assert home.headers["Location"] == "/static/"
        page = requests.get(url + "/static/", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"] == "text/html"
        assert page.content == (public / "index.html").read_bytes()
        identity = {"Accept-Encoding": "identity"}
        plain = requests.get(url + "/static/style.css", headers=identity, timeout=10)
        assert plain.content == (public / "style.css").read_bytes()
        assert "Content-Encoding" not in plain.headers
        assert plain.headers["Vary"] == "Accept-Encoding"
        packed = exchange(
            port_of(url), b"GET /static/style.css HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n"
        )
        assert b"\r\nContent-Encoding: gzip\r\n" in packed
        assert packed.endswith((public / "style.css.gz").read_bytes())
        first = {"Range": "bytes=0-4"}
        part = requests.get(url + "/static/hello.txt", headers=first, timeout=10)
        assert (part.status_code, part.content) == (206, b"Hello")
        unchanged = {"If-None-Match": part.headers["ETag"]}
        again = requests.get(url + "/static/hello.txt", headers=unchanged, timeout=10)
        assert again.status_code == 304
        assert b" 404 " in raw(url, "GET", "/static/../static_files.py")
        assert b" 404 " in raw(url, "GET", "/static/%2e%2e/static_files.py")
        assert b" 404 " in raw(url, "GET", "/static/nope.txt")
