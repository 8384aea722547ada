"""The per-request budget of HTTP/1.1 `GET /` in mummy, step by step, on one thread.

Usage: .venv-ft/bin/python bench/micro/request_budget.py [--requests N] [--json]
(or `./bench/run --only micro`)

Each step of a keep-alive request runs N times in a loop of its own, with mummy's own
functions and a wrk-like request head; the best of 5 runs is printed in microseconds
per request. The steps, in the order a request takes them:

- recv + send: one read of the request and one write of the response on a connected
  TCP pair over loopback (the two syscalls the IO thread makes);
- parse: `RequestParser.next_request` on the received bytes (IO thread);
- hand-off: `TaskRing.put` then `get` (IO thread -> worker), the same thread here: a
  wake-up of a sleeping worker costs more (`bench/micro/plumbing.py` measures that);
- Request: what the worker does before the handler (target split, query, `Request`);
- handler + respond: the bench app's handler, `respond()` with its serialization, up
  to the post to the mailbox;
- mailbox: `Mailbox.post` then `drain` (worker -> IO thread);
- total: the sum. 1e6 / total is what one core could serve if nothing else ran; the
  figure under load is lower (two threads contend, wrk shares the cores).

With --json: one JSON object {"step": us}.
"""

from __future__ import annotations

import argparse
import functools
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mummy.core.config import ServerConfig
from mummy.core.connection import Connection
from mummy.core.http1 import RequestParser
from mummy.core.messages import HttpTask
from mummy.core.ring import Mailbox, TaskRing
from mummy.core.runtime import WorkerRuntime
from mummy.core.streams import StreamRegistry
from mummy.core.wsregistry import WebSocketRegistry
from mummy.request import Request, ResponseContext

HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"  # what wrk sends
TEXT = {"Content-Type": "text/plain"}


def handler(request: Request) -> None:
    request.respond(200, TEXT, b"Hello, World!")


def best_us(step: Callable[[], object], requests: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(requests):
            step()
        best = min(best, (time.perf_counter() - started) / requests * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    n = args.requests

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server_sock, _ = listener.accept()
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!"

    def recv_send() -> None:
        client.send(HEAD)
        server_sock.recv(65536)
        server_sock.send(response)
        client.recv(65536)

    config = ServerConfig(workers=1)
    parser_ = RequestParser(config.max_headers_len, config.max_body_len)

    def parse() -> object:
        return parser_.next_request(bytearray(HEAD))

    ring: TaskRing[HttpTask] = TaskRing(1 << 30)
    mailbox: Mailbox[object] = Mailbox()
    posted: list[object] = []
    conn = Connection(
        server_sock, "127.0.0.1", posted.append, WebSocketRegistry(), StreamRegistry()
    )
    parsed = parser_.next_request(bytearray(HEAD))
    assert parsed is not None
    task = HttpTask(conn, parsed)

    def hand_off() -> object:
        ring.put(task)
        ring.in_flight -= 1
        return ring.get()

    ctx = ResponseContext(closing=lambda: False, config=config)
    make_request = functools.partial(Request, ctx)
    runtime = WorkerRuntime(config, handler, make_request, lambda *_: None)
    requests: list[Request] = []

    def build_request() -> None:
        requests.append(runtime._request(conn, parsed, None))  # type: ignore[arg-type]

    built = iter(requests)

    def handle() -> None:
        handler(next(built))

    def post_drain() -> None:
        mailbox.post(task)
        mailbox.drain()

    steps: dict[str, float] = {"recv + send (loopback TCP)": best_us(recv_send, n)}
    steps["parse"] = best_us(parse, n)
    steps["hand-off (ring put + get)"] = best_us(hand_off, n)
    requests.clear()
    steps["Request"] = best_us(build_request, n)
    # handler + respond needs one fresh Request a call: the 5 x n built above.
    steps["handler + respond (serialize, post)"] = best_us(handle, n)
    posted.clear()
    steps["mailbox (post + drain)"] = best_us(post_drain, n)
    steps["total"] = sum(steps.values())
    for sock in (client, server_sock, listener):
        sock.close()
    if args.json:
        print(json.dumps(steps))
        return
    gil = "GIL" if getattr(sys, "_is_gil_enabled", lambda: True)() else "free-threaded"
    print(f"GET / step by step, us per request (best of 5 x {n:,}); {sys.version.split()[0]} {gil}")
    for name, us in steps.items():
        print(f"  {name:<40}{us:8.2f}")


if __name__ == "__main__":
    main()
