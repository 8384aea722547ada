"""WSGI over real sockets: PEP 3333 semantics under wsgiref's validator, then real Flask
and Django applications. (examples/wsgi_flask.py as a script: tests/system.)"""

import gzip
import hashlib
import http.client
import json
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import WSGIWarning, validator

import pytest
import requests

import mummy
from mummy.wsgi import WSGIAdapter
from tests.client import connect, exchange, read_response, read_until_close, status_of

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
App = Callable[[Environ, StartResponse], Iterable[bytes]]
Serve = Callable[..., mummy.Server]


def wsgi(serve: Serve, app: App, **options: Any) -> int:
    """Serve `app` through WSGIAdapter; returns the port."""
    return serve(WSGIAdapter(app, **options)).port


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    return conn.getresponse()


# --- PEP 3333 under wsgiref.validate -----------------------------------------------------


class Validated:
    """`wsgiref.validate.validator` around an echo app, as a mummy handler; whatever the
    validator raises or warns (warnings are errors here) is kept in `failures`."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.environs: list[Environ] = []
        self.adapter = WSGIAdapter(validator(self.echo))

    def echo(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self.environs.append(dict(environ))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        reply = json.dumps(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "query": environ["QUERY_STRING"],
                "body": body.decode("latin-1"),
            }
        ).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))]
        )
        return [reply]

    def __call__(self, request: mummy.Request) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", WSGIWarning)
                self.adapter(request)
        except BaseException as exc:
            self.failures.append(exc)
            raise


@pytest.fixture
def validated(serve: Serve) -> Iterator[tuple[Validated, http.client.HTTPConnection]]:
    handler = Validated()
    port = serve(handler).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    yield handler, conn
    conn.close()
    assert handler.failures == []


def test_validator_get_and_query_string(validated: tuple[Validated, Any]) -> None:
    _, conn = validated
    conn.request("GET", "/a/b?x=1&y=two%20words&x=3")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {
        "method": "GET",
        "path": "/a/b",
        "query": "x=1&y=two%20words&x=3",
        "body": "",
    }


def test_validator_post_with_body(validated: tuple[Validated, Any]) -> None:
    handler, conn = validated
    conn.request("POST", "/submit", body=b"a=1&b=2", headers={"Content-Type": "text/plain"})
    response = conn.getresponse()
    assert json.loads(response.read())["body"] == "a=1&b=2"
    env = handler.environs[-1]
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "7"


def test_validator_chunked_post(validated: tuple[Validated, Any]) -> None:
    handler, conn = validated
    conn.request("PUT", "/chunked", body=iter([b"abc", b"def"]), encode_chunked=True)
    assert json.loads(conn.getresponse().read())["body"] == "abcdef"
    assert handler.environs[-1]["CONTENT_LENGTH"] == "6"


def test_validator_head_gets_no_body(validated: tuple[Validated, Any]) -> None:
    _, conn = validated
    conn.request("HEAD", "/")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b""
    assert int(response.getheader("Content-Length")) > 0
    conn.request("GET", "/after-head")  # the connection is still in step
    assert json.loads(conn.getresponse().read())["path"] == "/after-head"


def test_validator_duplicate_headers(validated: tuple[Validated, Any]) -> None:
    handler, conn = validated
    conn.putrequest("GET", "/dups")
    for name, value in [("X-Dup", "1"), ("X-Dup", "2"), ("Cookie", "a=1"), ("Cookie", "b=2")]:
        conn.putheader(name, value)
    conn.endheaders()
    assert conn.getresponse().read()
    env = handler.environs[-1]
    assert env["HTTP_X_DUP"] == "1, 2" and env["HTTP_COOKIE"] == "a=1; b=2"


@pytest.mark.parametrize("method", ["DELETE", "OPTIONS", "PATCH"])
def test_validator_other_methods(validated: tuple[Validated, Any], method: str) -> None:
    _, conn = validated
    conn.request(method, "/thing")
    assert json.loads(conn.getresponse().read())["method"] == method


def test_validator_utf8_path(validated: tuple[Validated, Any]) -> None:
    handler, conn = validated
    conn.request("GET", "/caf%C3%A9")
    conn.getresponse().read()
    assert handler.environs[-1]["PATH_INFO"] == "/caf\xc3\xa9"


# --- start_response, write(), close() ----------------------------------------------------


def test_write_callable_and_iterable_are_joined(serve: Serve) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one ")
        write(b"two ")
        return [b"three ", b"", b"four"]

    response = get(wsgi(serve, app), "/")
    assert response.read() == b"one two three four"


class Closing:
    """An application iterable that records close() and may fail half way."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b"first "
        if self.fail:
            raise RuntimeError("iteration failed")
        yield b"second"

    def close(self) -> None:
        self.closed.set()


@pytest.mark.parametrize("fail", [False, True])
def test_close_is_called_even_on_error(serve: Serve, fail: bool) -> None:
    made: list[Closing] = []

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [("Content-Type", "text/plain")])
        made.append(Closing(fail))
        return made[-1]

    response = get(wsgi(serve, app), "/")
    assert response.status == 200
    if fail:
        # Streamed (no Content-Length): the first chunk is out, so the body is cut.
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert cut.value.partial == b"first "
    else:
        assert response.read() == b"first second"
    assert made[0].closed.wait(5)


def test_lazy_start_response_in_a_generator(serve: Serve) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        yield b""  # empty chunks may come before start_response
        start_response("201 Created", [("Content-Type", "text/plain")])
        yield b"made"

    response = get(wsgi(serve, app), "/")
    assert (response.status, response.read()) == (201, b"made")


def test_exc_info_replaces_the_response_not_yet_sent(serve: Serve) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("X-Early", "1")])
        write(b"partial output ")
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error page"]

    response = get(wsgi(serve, app), "/")
    assert response.status == 503 and response.read() == b"error page"
    assert response.getheader("X-Early") is None


def test_exc_info_is_re_raised_once_responded(serve: Serve) -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["mummy.request"].respond(202, {"Content-Type": "text/plain"}, "answered directly")
        try:
            raise ValueError("after the response")
        except ValueError as error:
            try:
                start_response("500 Internal Server Error", [], sys.exc_info())
            except ValueError as again:
                raised.append(again)
                assert again is error
        return []

    response = get(wsgi(serve, app), "/")
    assert (response.status, response.read()) == (202, b"answered directly")
    assert len(raised) == 1


@pytest.mark.parametrize(
    "mistake", ["twice", "no_start", "str_body", "body_first", "bad_status", "bad_headers", "1xx"]
)
def test_application_mistakes_get_a_500(
    serve: Serve, mistake: str, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
        if mistake == "twice":
            start_response("200 OK", [])
            start_response("200 OK", [])
        elif mistake == "str_body":
            start_response("200 OK", [])
            return ["text, not bytes"]
        elif mistake == "body_first":
            return [b"body", b"before start_response"]
        elif mistake == "bad_status":
            start_response(200, [])
        elif mistake == "bad_headers":
            start_response("200 OK", {"Content-Type": "text/plain"})
        elif mistake == "1xx":
            start_response("103 Early Hints", [])
        return []

    caplog.set_level(logging.ERROR, logger="mummy")
    response = get(wsgi(serve, app), "/")
    assert response.status == 500 and response.read() == b"Internal Server Error\n"
    assert any(r.exc_info for r in caplog.records), "the traceback is logged"


def test_wsgi_errors_reach_the_mummy_wsgi_logger(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        print("something", "odd", file=environ["wsgi.errors"])
        environ["wsgi.errors"].write("no newline")
        start_response("200 OK", [])
        return []

    caplog.set_level(logging.ERROR, logger="mummy.wsgi")
    assert get(wsgi(serve, app), "/").status == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "mummy.wsgi"]
    assert messages == ["something odd", "no newline"]


# --- what reaches the wire ---------------------------------------------------------------


def headers_app(pairs: list[tuple[str, str]], body: bytes, status: str = "200 OK") -> App:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, list(pairs))
        return [body]

    return app


def test_hop_by_hop_headers_are_dropped_and_keep_alive_still_works(serve: Serve) -> None:
    app = headers_app(
        [
            ("Content-Type", "text/plain"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Trailer", "X-Checksum"),
            ("Content-Length", "999"),
            ("X-Kept", "yes"),
        ],
        b"hello",
    )
    port = wsgi(serve, app)
    with connect(port) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(sock)
            assert (status, body, headers["content-length"]) == (200, b"hello", "5")
            assert headers["x-kept"] == "yes"
            for name in ("connection", "keep-alive", "transfer-encoding", "upgrade", "trailer"):
                assert name not in headers


def test_connection_close_from_the_app_closes(serve: Serve) -> None:
    app = headers_app([("Connection", "Close")], b"bye")
    port = wsgi(serve, app)
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_until_close(sock)
    assert raw.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in raw
    assert raw.endswith(b"bye")


def test_head_keeps_the_app_content_length_when_it_sends_no_body(serve: Serve) -> None:
    app = headers_app([("Content-Type", "text/plain"), ("Content-Length", "1234")], b"")
    port = wsgi(serve, app)
    raw = exchange(port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Content-Length: 1234\r\n" in raw and raw.endswith(b"\r\n\r\n")


def test_no_body_statuses(serve: Serve) -> None:
    port_204 = wsgi(serve, headers_app([("Content-Length", "4")], b"oops", "204 No Content"))
    raw = exchange(port_204, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 204 and b"Content-Length" not in raw and raw.endswith(b"\r\n\r\n")
    port_304 = wsgi(serve, headers_app([("Content-Length", "10")], b"", "304 Not Modified"))
    raw = exchange(port_304, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 304 and b"Content-Length: 10\r\n" in raw


def test_responses_are_compressed_by_mummy(serve: Serve) -> None:
    text = b"compress me " * 500
    port = wsgi(serve, headers_app([("Content-Type", "text/plain")], text))
    response = get(port, "/", {"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(response.read()) == text


def test_a_gzipped_request_body_arrives_decoded(serve: Serve) -> None:
    seen: list[tuple[str, bytes, str | None]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()
        seen.append((environ["CONTENT_LENGTH"], body, environ.get("HTTP_CONTENT_ENCODING")))
        start_response("200 OK", [])
        return []

    port = wsgi(serve, app)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/", body=gzip.compress(b"x" * 1000), headers={"Content-Encoding": "gzip"})
    assert conn.getresponse().status == 200
    assert seen == [("1000", b"x" * 1000, None)]


def test_script_name_mount(serve: Serve) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]

    port = wsgi(serve, app, script_name="/api")
    assert get(port, "/api/users").read() == b"/api|/users"
    assert get(port, "/elsewhere").status == 404


def test_forwarded_headers_from_a_trusted_proxy(serve: Serve) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [f"{environ['REMOTE_ADDR']} {environ['wsgi.url_scheme']}".encode()]

    forwarded = {"X-Forwarded-For": "192.0.2.7, 127.0.0.1", "X-Forwarded-Proto": "https"}
    trusted = wsgi(serve, app, forwarded_allow_ips="127.0.0.1")
    assert get(trusted, "/", forwarded).read() == b"192.0.2.7 https"
    rfc = {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}
    assert get(trusted, "/", rfc).read() == b"2001:db8::1 https"
    untrusted = wsgi(serve, app, forwarded_allow_ips="10.0.0.0/8")
    assert get(untrusted, "/", forwarded).read() == b"127.0.0.1 http"
    assert get(wsgi(serve, app), "/", forwarded).read() == b"127.0.0.1 http"


def test_applications_run_in_parallel(serve: Serve) -> None:
    # Only eight applications running at once pass the barrier; one at a time, the
    # first would wait alone until the barrier's timeout breaks it (and answer 500).
    barrier = threading.Barrier(8, timeout=30)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        barrier.wait()
        start_response("200 OK", [])
        return [b"together"]

    port = serve(WSGIAdapter(app), workers=8).port
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(get(port, "/").read())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"together"] * 8


# --- Flask -------------------------------------------------------------------------------


@pytest.fixture
def flask_base(serve: Serve) -> str:
    from tests.integration.wsgi_apps.flask_app import create_app

    return f"http://127.0.0.1:{serve(WSGIAdapter(create_app())).port}"


def test_flask_routes_and_json(flask_base: str) -> None:
    with requests.Session() as session:  # one keep-alive connection for all of them
        assert session.get(flask_base + "/").text == "Hello from Flask"
        got = session.get(flask_base + "/json", params={"a": ["1", "2"], "b": "x y"}).json()
        assert got == {
            "greeting": "hello",
            "numbers": [1, 2, 3],
            "query": {"a": ["1", "2"], "b": ["x y"]},
        }
        payload = {"name": "mummy", "tags": ["é", "ü"], "nested": {"n": 1}}
        assert session.post(flask_base + "/json", json=payload).json() == {"received": payload}
        assert session.get(flask_base + "/missing").status_code == 404
        assert session.post(flask_base + "/").status_code == 405


def test_flask_form_post(flask_base: str) -> None:
    response = requests.post(flask_base + "/form", data={"a": ["1", "2"], "name": "é x"})
    assert response.json() == {"form": {"a": ["1", "2"], "name": ["é x"]}}


def test_flask_file_upload(flask_base: str) -> None:
    data = bytes(range(256)) * 400  # 100 KiB, every byte value
    response = requests.post(
        flask_base + "/upload",
        files={"file": ("data.bin", data, "application/octet-stream")},
        data={"note": "a note"},
    )
    assert response.json() == {
        "filename": "data.bin",
        "content_type": "application/octet-stream",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "a note",
    }


def test_flask_streaming_response_is_chunked(flask_base: str) -> None:
    response = requests.get(flask_base + "/stream", headers={"Accept-Encoding": "identity"})
    assert response.text == "".join(f"chunk {i}\n" for i in range(5))
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers


def test_flask_error_handler_custom_500(flask_base: str) -> None:
    response = requests.get(flask_base + "/boom")
    assert response.status_code == 500 and response.text == "custom 500 page: Boom"


def test_flask_exception_propagated_to_mummy(serve: Serve) -> None:
    from tests.integration.wsgi_apps.flask_app import create_app

    port = serve(WSGIAdapter(create_app(custom_500=False))).port
    response = requests.get(f"http://127.0.0.1:{port}/boom")
    assert response.status_code == 500 and response.text == "Internal Server Error\n"
    assert requests.get(f"http://127.0.0.1:{port}/").status_code == 200


def test_flask_unicode_path_cookies_redirect_and_url(flask_base: str) -> None:
    assert requests.get(flask_base + "/café").text == "path=/café"
    response = requests.get(flask_base + "/cookies", cookies={"a": "1", "b": "2"})
    assert response.json() == {"cookies": {"a": "1", "b": "2"}}
    assert response.cookies.get_dict() == {"first": "1", "second": "2"}
    response = requests.get(flask_base + "/redirect", allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    where = requests.get(flask_base + "/where?x=1").json()
    assert where["url"] == flask_base + "/where?x=1" and where["remote_addr"] == "127.0.0.1"


def test_flask_head_and_compression_with_http_client(flask_base: str) -> None:
    port = int(flask_base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("HEAD", "/")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"")
    assert response.getheader("Content-Length") == str(len("Hello from Flask"))
    conn.request("GET", "/big", headers={"Accept-Encoding": "gzip"})
    response = conn.getresponse()
    assert response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(response.read()) == b"mummy " * 2000
    conn.close()


# --- Django ------------------------------------------------------------------------------


@pytest.fixture
def django_base(serve: Serve) -> str:
    from tests.integration.wsgi_apps import django_project

    return f"http://127.0.0.1:{serve(WSGIAdapter(django_project.application)).port}"


def test_django_views(django_base: str) -> None:
    with requests.Session() as session:
        response = session.get(django_base + "/")
        assert (response.status_code, response.text) == (200, "Hello from Django")
        echo = session.get(
            django_base + "/echo/", params={"q": ["1", "2"]}, cookies={"a": "1", "b": "2"}
        ).json()
        assert echo["method"] == "GET" and echo["query"] == {"q": ["1", "2"]}
        assert echo["cookies"] == {"a": "1", "b": "2"}
        assert echo["absolute_uri"] == django_base + "/echo/?q=1&q=2"
        assert echo["remote_addr"] == "127.0.0.1" and echo["secure"] is False
        assert echo["user_agent"].startswith("python-requests/")


def test_django_form_post(django_base: str) -> None:
    echo = requests.post(django_base + "/echo/", data={"name": "é", "n": ["1", "2"]}).json()
    assert echo["form"] == {"name": ["é"], "n": ["1", "2"]}
    assert echo["content_type"] == "application/x-www-form-urlencoded"


def test_django_append_slash_unicode_path_and_500(django_base: str) -> None:
    response = requests.get(django_base + "/echo", allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (301, "/echo/")
    assert requests.get(django_base + "/café/").text == "path=/café/"
    response = requests.get(django_base + "/boom/")
    assert response.status_code == 500 and "Server Error (500)" in response.text
    assert requests.get(django_base + "/nowhere/").status_code == 404


def test_django_behind_a_trusted_proxy(serve: Serve) -> None:
    from tests.integration.wsgi_apps import django_project

    adapter = WSGIAdapter(django_project.application, forwarded_allow_ips="127.0.0.1")
    port = serve(adapter).port
    echo = requests.get(
        f"http://127.0.0.1:{port}/echo/",
        headers={"Forwarded": "for=192.0.2.60;proto=https", "Host": "shop.example"},
    ).json()
    assert echo["remote_addr"] == "192.0.2.60" and echo["host"] == "shop.example"
    # Django's is_secure() reads wsgi.url_scheme.
    assert echo["secure"] is True and echo["absolute_uri"] == "https://shop.example/echo/"
