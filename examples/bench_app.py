"""The benchmark app (bench/http.py): `/` hello, `/sleep` 10 ms sleep, `/cpu` ~1 ms of Python.

Run: .venv-ft/bin/python examples/bench_app.py [port] [workers]
"""

import sys
import time

import mummy

HELLO = b"Hello, World!"
TEXT = {"Content-Type": "text/plain"}


def cpu_work() -> int:
    total = 0
    for i in range(20_000):
        total += i * i % 7
    return total


def handler(request: mummy.Request) -> None:
    path = request.path
    if path == "/":
        request.respond(200, TEXT, HELLO)
    elif path == "/sleep":
        time.sleep(0.010)
        request.respond(200, TEXT, HELLO)
    elif path == "/cpu":
        request.respond(200, TEXT, str(cpu_work()))
    else:
        request.respond(404, TEXT, "Not Found")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    mummy.Server(handler, workers=workers).serve(port)
