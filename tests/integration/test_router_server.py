"""A Router as the server's handler: real requests over real sockets."""

import http.client
import logging
import threading

import pytest

import mummy
from tests.client import connect, exchange, read_response, status_of
from tests.servers import wait_for


def get(port: int, target: str, method: str = "GET", headers: str = "") -> bytes:
    """One request on its own connection: the raw response, up to the close."""
    request = f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    return exchange(port, request.encode())


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, body


def text(status: int, body: str) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "text/plain"}, body


@pytest.fixture
def router() -> mummy.Router:
    router = mummy.Router()

    @router.get("/")
    def index(request: mummy.Request) -> None:
        request.respond(*text(200, "Hello, World!"))

    @router.get("/objects/@id")
    def get_object(request: mummy.Request) -> None:
        assert type(request.path_params) is dict
        request.respond(*text(200, f"Object: {request.path_params['id']}"))

    @router.put("/objects/@id")
    def put_object(request: mummy.Request) -> None:
        request.respond(*text(200, f"Put {request.path_params['id']}: {request.body.decode()}"))

    @router.get("/search")
    def search(request: mummy.Request) -> None:
        request.respond(*text(200, f"Name: {request.query_params.get('name', '')}"))

    @router.get("/static/**/*.css")
    def css(request: mummy.Request) -> None:
        request.respond(200, {"Content-Type": "text/css"}, request.path)

    @router.get("/質問/@word")
    def unicode(request: mummy.Request) -> None:
        request.respond(*text(200, request.path_params["word"]))

    @router.get("/raise")
    def broken(request: mummy.Request) -> None:
        raise ValueError("expected by the test")

    return router


def test_routes_params_and_queries(serve, router) -> None:
    port = serve(router).port
    assert split(get(port, "/"))[::2] == (200, b"Hello, World!")
    assert split(get(port, "/objects/42"))[2] == b"Object: 42"
    assert split(get(port, "/objects/a%20b"))[2] == b"Object: a b"  # params are decoded
    assert split(get(port, "/search?name=foo+bar&x=1"))[2] == b"Name: foo bar"
    assert split(get(port, "/static/a/b/site.css"))[2] == b"/static/a/b/site.css"
    assert split(get(port, "/%E8%B3%AA%E5%95%8F/%E6%97%A5"))[2] == "日".encode()
    put = b"PUT /objects/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    assert split(exchange(port, put))[2] == b"Put 7: hi"


def test_many_requests_on_one_keep_alive_connection(serve, router) -> None:
    port = serve(router).port
    with connect(port) as sock:
        for i in range(100):
            sock.sendall(f"GET /objects/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert read_response(sock)[::2] == (200, f"Object: {i}".encode())


def test_head_is_served_by_the_get_route_without_a_body(serve, router) -> None:
    port = serve(router).port
    status, headers, body = split(get(port, "/objects/42", "HEAD"))
    assert (status, headers["content-length"], body) == (200, "10", b"")


def test_default_not_found(serve, router) -> None:
    port = serve(router).port
    status, headers, body = split(get(port, "/nothing/here"))
    assert (status, headers["content-type"], body) == (404, "text/html", b"<h1>Not Found</h1>")
    status, headers, body = split(get(port, "/nothing/here", "HEAD"))
    assert (status, headers["content-length"], body) == (404, "18", b"")


def test_default_method_not_allowed_lists_the_allowed_methods(serve, router) -> None:
    port = serve(router).port
    status, headers, body = split(get(port, "/objects/1", "DELETE"))
    assert (status, headers["content-type"]) == (405, "text/html")
    assert body == b"<h1>Method Not Allowed</h1>"
    assert headers["allow"] == "GET, HEAD, PUT"
    status, headers, body = split(get(port, "/", "POST"))
    assert (status, headers["allow"], headers["content-length"]) == (405, "GET, HEAD", "27")


def test_http_client_sees_the_same(serve, router) -> None:
    port = serve(router).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for method, path, status in [
        ("GET", "/", 200),
        ("HEAD", "/", 200),
        ("POST", "/", 405),
        ("GET", "/missing", 404),
        ("OPTIONS", "/objects/1", 405),
    ]:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        assert response.status == status, (method, path)
    conn.close()


def test_an_exception_is_logged_and_answered_with_500(serve, router, caplog) -> None:
    port = serve(router).port
    with caplog.at_level(logging.ERROR, logger="mummy"):
        status, headers, body = split(get(port, "/raise"))
    assert (status, headers["content-type"]) == (500, "text/html")
    assert body == b"<h1>Internal Server Error</h1>"
    assert any(
        r.name == "mummy" and r.exc_info and "expected by the test" in str(r.exc_info[1])
        for r in caplog.records
    )
    assert split(get(port, "/"))[0] == 200  # still serving


def test_an_exception_after_responding_is_logged_only(serve, caplog) -> None:
    router = mummy.Router()

    @router.get("/")
    def respond_then_raise(request: mummy.Request) -> None:
        request.respond(200, body="sent")
        raise RuntimeError("after the response")

    port = serve(router).port
    with caplog.at_level(logging.ERROR, logger="mummy"):
        with connect(port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            assert read_response(sock)[2] == b"sent"
            assert read_response(sock)[2] == b"sent"
        # The handler logs after the client has its response: wait for both records.
        assert wait_for(lambda: len(caplog.records) >= 2)
    assert [str(r.exc_info[1]) for r in caplog.records] == ["after the response"] * 2


def test_custom_handlers(serve) -> None:
    seen: list[tuple[str, str]] = []

    def not_found(request: mummy.Request) -> None:
        request.respond(404, {"Content-Type": "text/html"}, "<h1>I'm not here</h1>")

    def not_allowed(request: mummy.Request) -> None:
        request.respond(405, {"Allow": "GET"}, "use GET")

    def on_error(request: mummy.Request, exc: Exception) -> None:
        seen.append((request.path, repr(exc)))
        request.respond(503, body=f"sorry: {exc}")

    router = mummy.Router(
        not_found_handler=not_found, method_not_allowed_handler=not_allowed, error_handler=on_error
    )
    router.get("/", lambda request: request.respond(200, body="home"))
    router.get("/fail", lambda request: 1 / 0)
    port = serve(router).port
    assert split(get(port, "/nope"))[::2] == (404, b"<h1>I'm not here</h1>")
    assert split(get(port, "/", "POST"))[::2] == (405, b"use GET")
    assert split(get(port, "/fail"))[::2] == (503, b"sorry: division by zero")
    assert seen == [("/fail", "ZeroDivisionError('division by zero')")]

    # The attributes may also be replaced after construction; an error in the
    # not-found handler goes to the error handler too.
    def failing_not_found(request: mummy.Request) -> None:
        raise LookupError("no page")

    router.not_found_handler = failing_not_found
    assert split(get(port, "/nope"))[::2] == (503, b"sorry: no page")


def test_a_router_can_route_to_another_router(serve) -> None:
    api = mummy.Router()
    api.get("/api/users/@id", lambda r: r.respond(200, body=f"{r.path_params}"))
    site = mummy.Router()
    site.add_route("GET", "/api/**", api)
    site.get("/", lambda r: r.respond(200, body="site"))
    port = serve(site).port
    assert split(get(port, "/api/users/5"))[::2] == (200, b"{'id': '5'}")
    assert split(get(port, "/"))[::2] == (200, b"site")
    assert split(get(port, "/api/nothing"))[0] == 404  # the inner router's not-found


def test_concurrent_clients_get_their_own_params(serve, router) -> None:
    port = serve(router, workers=16).port
    failures: list[str] = []

    def client(n: int) -> None:
        with connect(port) as sock:
            for i in range(50):
                sock.sendall(f"GET /objects/{n}-{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                status, _, body = read_response(sock)
                if (status, body) != (200, f"Object: {n}-{i}".encode()):
                    failures.append(f"{n}-{i}: {status} {body!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_the_router_only_answers_what_the_server_parsed(serve, router) -> None:
    port = serve(router).port
    assert status_of(get(port, "/objects/%zz")) == 400  # the server refuses bad escapes
