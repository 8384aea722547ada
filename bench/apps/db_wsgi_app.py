"""WSGI twin of db_app.py, for granian: `/db` one query of a random row of `world`, as
JSON (bench/apps/db_common.py), `/gil` whether the GIL is on.

Its pool has $DATABASE_POOL_SIZE connections: as many as granian's --blocking-threads,
which the app cannot see. It opens when granian imports the app, in the process that
serves it.
"""

import os
from collections.abc import Callable, Iterable

from db_common import JSON, open_pool, single_query
from twins import gil_enabled

pool = open_pool(int(os.environ["DATABASE_POOL_SIZE"]))


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO")
    if path == "/db":
        status, kind, body = "200 OK", JSON, single_query(pool)
    elif path == "/gil":
        status, kind, body = "200 OK", "text/plain", gil_enabled()
    else:
        status, kind, body = "404 Not Found", "text/plain", b"Not Found"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]
