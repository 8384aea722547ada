"""WSGI twin of examples/bench_app.py, for the peers granian, gunicorn and waitress.

`/` hello, `/sleep` a blocking 10 ms sleep then hello, `/cpu` ~1 ms of pure Python, and
`/gil` (not benchmarked) says whether the GIL is on in the serving process.
"""

import sys
import time
from collections.abc import Callable, Iterable

HELLO = b"Hello, World!"


def cpu_work() -> int:
    total = 0
    for i in range(20_000):
        total += i * i % 7
    return total


def gil_enabled() -> bool:
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO")
    status = "200 OK"
    if path == "/":
        body = HELLO
    elif path == "/sleep":
        time.sleep(0.010)
        body = HELLO
    elif path == "/cpu":
        body = str(cpu_work()).encode()
    elif path == "/gil":
        body = str(gil_enabled()).encode()
    else:
        status, body = "404 Not Found", b"Not Found"
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    start_response(status, headers)
    return [body]
