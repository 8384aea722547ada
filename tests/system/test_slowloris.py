"""500 slowloris attackers against one server while a normal client is served: an
invariant only (who was answered, who was cut off), never a timing."""

import resource
import threading
import time

import mummy
from tests.client import connect, read_response, read_until_close, status_of


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def test_slowloris_attackers_are_cut_off_and_normal_clients_served(serve) -> None:
    raise_fd_limit(4096)
    handled: list[str] = []

    def handler(request: mummy.Request) -> None:
        handled.append(request.path)
        request.respond(200, body="ok")

    server = serve(handler, header_timeout=1.0, workers=4)
    attackers = []
    for _ in range(500):
        sock = connect(server.port)
        sock.sendall(b"GET /attack HTTP/1.1\r\nHost: x\r\n")
        attackers.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        # An endless head, one header line at a time (slowloris); the pause paces the
        # attack, nothing waits on it.
        while not stop.is_set():
            for sock in attackers:
                try:
                    sock.send(b"X-a: b\r\n")
                except OSError:
                    pass
            time.sleep(0.2)

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        with connect(server.port) as normal:
            for i in range(100):
                normal.sendall(f"GET /normal/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert read_response(normal)[2] == b"ok"
    finally:
        # A test of header_timeout: keep trickling past it, so that the attackers are
        # cut off while still sending, not after they stopped.
        time.sleep(1.5)
        stop.set()
        trickler.join()
    statuses = []
    for sock in attackers:
        data = read_until_close(sock, timeout=20)
        statuses.append(status_of(data) if data else None)
        sock.close()
    # Every attacker got 408 (it had sent part of a head) and was closed.
    assert statuses == [408] * 500
    # No worker ever ran for an attacker.
    assert handled == [f"/normal/{i}" for i in range(100)]
