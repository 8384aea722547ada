"""Many clients at once: every response correct and in order; blocking handlers overlap."""

import http.client
import json
import random
import threading

import mummy
from tests.client import connect, read_response
from tests.servers import tasks_in_flight, wait_for


def echo_handler(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, request.path + "|" + request.body.decode())


def run_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def test_hundreds_of_keep_alive_clients(serve) -> None:
    server = serve(echo_handler, workers=16)
    clients, per_client = 200, 25

    def client(i: int) -> None:
        with connect(server.port, timeout=60) as sock:
            for n in range(per_client):
                body = f"{i}-{n}".encode()
                sock.sendall(
                    b"POST /c%d/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                    % (i, n, len(body), body)
                )
                status, _, got = read_response(sock, timeout=60)
                assert status == 200
                assert got == f"/c{i}/{n}|{i}-{n}".encode()

    assert run_threads(clients, client) == []


def test_pipelined_bursts_from_many_clients(serve) -> None:
    server = serve(echo_handler, workers=16)

    def client(i: int) -> None:
        with connect(server.port, timeout=60) as sock:
            sock.sendall(
                b"".join(b"GET /%d/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i, n) for n in range(50))
            )
            for n in range(50):
                assert read_response(sock, timeout=60)[2] == f"/{i}/{n}|".encode()

    assert run_threads(100, client) == []


def test_mummy_http2_smoke(serve) -> None:
    # Mummy's tests/test_http2.nim: 100 threads x 10 POSTs, new connection each time.
    def handler(request: mummy.Request) -> None:
        assert list(request.query_params) == ["v"]
        if request.path == "/" and request.method == "POST":
            val = json.loads(request.body)["val"]
            request.respond(200, {"Content-Type": "application/json"}, json.dumps({"val": val + 1}))
        elif request.path == "/":
            request.respond(405)
        else:
            request.respond(404)

    server = serve(handler, workers=16)

    def client(i: int) -> None:
        rng = random.Random(i)
        for _ in range(10):
            val = rng.randint(0, 99)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            conn.request("POST", f"/?v={i}", body=json.dumps({"val": val}))
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {"val": val + 1}
            conn.close()

    assert run_threads(100, client) == []


def test_blocking_handlers_do_not_stall_others(serve) -> None:
    # Mummy's tests/test_sleep.nim: responses arrive while handlers still sleep.
    started = threading.Semaphore(0)
    release = threading.Event()
    finished = []

    def handler(request: mummy.Request) -> None:
        request.respond(200, body="early")
        started.release()
        release.wait(30)
        finished.append(1)

    server = serve(handler, workers=10)
    for _ in range(10):
        with connect(server.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[2] == b"early"
    for _ in range(10):
        assert started.acquire(timeout=10)
    assert finished == []  # all ten handlers are still blocked, yet everyone was answered
    release.set()


def test_close_refuses_requests_still_queued_near_its_deadline_with_503(serve) -> None:
    gate = threading.Event()
    running = threading.Event()

    def handler(request: mummy.Request) -> None:
        running.set()
        gate.wait(10)
        request.respond(200, body="finished")

    server = serve(handler, workers=1)
    socks = [connect(server.port) for _ in range(3)]
    socks[0].sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert running.wait(10)
    for sock in socks[1:]:
        sock.sendall(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_for(lambda: tasks_in_flight(server) == 3)  # queued behind the busy worker
    # The only worker stays busy: 1 s before the deadline the queued two are refused.
    closer = threading.Thread(target=server.close, kwargs={"timeout": 2})
    closer.start()
    queued = [read_response(sock) for sock in socks[1:]]
    assert [(s, h.get("connection")) for s, h, _ in queued] == [(503, "close")] * 2
    gate.set()
    status, headers, body = read_response(socks[0])
    assert (status, body, headers.get("connection")) == (200, b"finished", "close")
    closer.join(15)
    assert not closer.is_alive()
    for sock in socks:
        sock.close()


def test_close_serves_the_requests_already_queued_while_there_is_time(serve) -> None:
    gate = threading.Event()
    running = threading.Event()

    def handler(request: mummy.Request) -> None:
        if request.path == "/first":
            running.set()
            gate.wait(10)
        request.respond(200, body=request.path)

    server = serve(handler, workers=1)
    socks = [connect(server.port) for _ in range(3)]
    socks[0].sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert running.wait(10)
    for i, sock in enumerate(socks[1:]):
        sock.sendall(f"GET /queued{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert wait_for(lambda: tasks_in_flight(server) == 3)
    closer = threading.Thread(target=server.close, kwargs={"timeout": 10})
    closer.start()
    assert wait_for(lambda: server.closing)
    gate.set()  # what was received is answered once the worker is free
    answers = [read_response(sock) for sock in socks]
    assert [(s, b, h.get("connection")) for s, h, b in answers] == [
        (200, b"/first", "close"),
        (200, b"/queued0", "close"),
        (200, b"/queued1", "close"),
    ]
    closer.join(15)
    assert not closer.is_alive()
    for sock in socks:
        sock.close()
    # No longer accepting.
    try:
        connect(server.port, timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused
