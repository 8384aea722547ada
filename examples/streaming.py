"""Streamed responses: a body produced by a generator and sent as it comes.

GET /count?n=N sends the lines 1 to N, one every tenth of a second, so that a client sees
each as it is made; GET /big?mb=M sends M MiB of bytes in 64 KiB chunks, never holding
more than one chunk. `request.respond_stream(status, headers, chunks)` takes any iterable
of bytes (or str); the length is not known up front, so HTTP/1.1 sends it chunked.

Run: .venv-ft/bin/python examples/streaming.py, then `curl -N 'http://localhost:8080/count?n=5'`
or `curl -s 'http://localhost:8080/big?mb=100' | wc -c`.
"""

import os
import time
from collections.abc import Iterator

import mummy

CHUNK = bytes(range(256)) * 256  # 64 KiB


def count(n: int) -> Iterator[bytes]:
    for i in range(1, n + 1):
        yield f"{i}\n".encode()
        time.sleep(0.1)  # stands in for work that takes a while: a query, a computation


def big(mb: int) -> Iterator[bytes]:
    for _ in range(mb * 16):  # 16 chunks of 64 KiB to the MiB
        yield CHUNK


def number(request: mummy.Request, name: str) -> int | None:
    """The query parameter `name` as a non-negative integer, None if it is not one."""
    value = request.query_params.get(name, "")
    return int(value) if value.isdecimal() else None


def handler(request: mummy.Request) -> None:
    if request.method != "GET":
        request.respond(405, {"Allow": "GET"})
    elif request.path == "/count" and (n := number(request, "n")) is not None:
        request.respond_stream(200, {"Content-Type": "text/plain"}, count(n))
    elif request.path == "/big" and (mb := number(request, "mb")) is not None:
        request.respond_stream(200, {"Content-Type": "application/octet-stream"}, big(mb))
    elif request.path in ("/count", "/big"):
        request.respond(400, {"Content-Type": "text/plain"}, "Use /count?n=N or /big?mb=M\n")
    else:
        request.respond(404, {"Content-Type": "text/plain"}, "Not Found")


server = mummy.Server(handler)

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
