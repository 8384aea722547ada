"""The mummy bench app: `/` hello, `/sleep` a blocking 10 ms sleep then hello, `/cpu` ~1 ms
of pure Python, `/gil` whether the GIL is on. Twins for the peers: wsgi_app.py, asgi_app.py.

Run: .venv-ft/bin/python bench/apps/mummy_app.py PORT [WORKERS] [HEADER_TIMEOUT]
(workers and header_timeout left out: mummy's defaults)
"""

import sys
import time

from twins import HELLO, cpu_work, gil_enabled

import mummy

TEXT = {"Content-Type": "text/plain"}


def handler(request: mummy.Request) -> None:
    path = request.path
    if path == "/":
        request.respond(200, TEXT, HELLO)
    elif path == "/sleep":
        time.sleep(0.010)
        request.respond(200, TEXT, HELLO)
    elif path == "/cpu":
        request.respond(200, TEXT, str(cpu_work()))
    elif path == "/gil":
        request.respond(200, TEXT, gil_enabled())
    else:
        request.respond(404, TEXT, "Not Found")


if __name__ == "__main__":
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    options = {"header_timeout": float(sys.argv[3])} if len(sys.argv) > 3 else {}
    mummy.Server(handler, workers=workers, **options).serve(port, "127.0.0.1")
