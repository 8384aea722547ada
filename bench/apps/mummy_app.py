"""The mummy bench app: `/` hello, `/sleep` a blocking 10 ms sleep then hello, `/cpu` ~1 ms
of pure Python, `/gil` whether the GIL is on. Twins for the peers: wsgi_app.py, asgi_app.py.

Run: .venv-ft/bin/python bench/apps/mummy_app.py PORT [WORKERS] [HEADER_TIMEOUT]
(workers and header_timeout left out: mummy's defaults; in the environment,
BENCH_IO_THREADS=N: io_threads, BENCH_METRICS_PORT=P: metrics_port)
"""

import os
import sys
import time

from twins import answer, port_and_workers

import mummy

TEXT = {"Content-Type": "text/plain"}


def handler(request: mummy.Request) -> None:
    path = request.path
    if path == "/sleep":
        time.sleep(0.010)
        path = "/"
    status, body = answer(path)
    request.respond(status, TEXT, body)


if __name__ == "__main__":
    port, workers = port_and_workers(sys.argv)
    options: dict[str, float] = {"header_timeout": float(sys.argv[3])} if len(sys.argv) > 3 else {}
    io_threads = int(os.environ.get("BENCH_IO_THREADS", "1"))
    metrics = os.environ.get("BENCH_METRICS_PORT")
    server = mummy.Server(handler, workers=workers, io_threads=io_threads, **options)
    server.serve(port, "127.0.0.1", metrics_port=int(metrics) if metrics else None)
