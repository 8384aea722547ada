"""WSGI twin of mummy_app.py, for granian, gunicorn and waitress: `/` hello, `/sleep` a
blocking 10 ms sleep then hello, `/cpu` ~1 ms of pure Python, `/gil`."""

import time
from collections.abc import Callable, Iterable

from twins import answer

STATUS = {200: "200 OK", 404: "404 Not Found"}


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    path = str(environ.get("PATH_INFO"))
    if path == "/sleep":
        time.sleep(0.010)
        path = "/"
    status, body = answer(path)
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    start_response(STATUS[status], headers)
    return [body]
