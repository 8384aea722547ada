"""The mummy app of the db driver: `/db` one query of a random row of `world`, as JSON
(bench/apps/db_common.py), `/gil` whether the GIL is on. Twin for granian: db_wsgi_app.py.

Run: DATABASE_URL=postgresql://... .venv-ft/bin/python bench/apps/db_app.py PORT WORKERS
(a pool of WORKERS connections, one per worker)
"""

import sys

from db_common import JSON, open_pool, single_query
from twins import gil_enabled

import mummy

TEXT = {"Content-Type": "text/plain"}


def main(port: int, workers: int) -> None:
    pool = open_pool(workers)

    def handler(request: mummy.Request) -> None:
        if request.path == "/db":
            request.respond(200, {"Content-Type": JSON}, single_query(pool))
        elif request.path == "/gil":
            request.respond(200, TEXT, gil_enabled())
        else:
            request.respond(404, TEXT, "Not Found")

    with pool:
        mummy.Server(handler, workers=workers).serve(port, "127.0.0.1")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
