"""WSGI twin of mummy_app.py, for granian, gunicorn and waitress: `/` hello, `/sleep` a
blocking 10 ms sleep then hello, `/cpu` ~1 ms of pure Python, `/gil`."""

import time
from collections.abc import Callable, Iterable

from twins import HELLO, cpu_work, gil_enabled


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
        body = gil_enabled()
    else:
        status, body = "404 Not Found", b"Not Found"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
