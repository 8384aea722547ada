"""The compression benchmark's app: `/` answers the ~100 KB JSON body of twins.json_body,
compressed by mummy with whatever the client's Accept-Encoding picks; `/gil`.

Run: .venv-ft/bin/python bench/apps/compression_app.py PORT [WORKERS]
(workers left out: mummy's default)
"""

import sys

from twins import gil_enabled, json_body, port_and_workers

import mummy

BODY = json_body()
JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}


def handler(request: mummy.Request) -> None:
    if request.path == "/":
        request.respond(200, JSON, BODY)
    elif request.path == "/gil":
        request.respond(200, TEXT, gil_enabled())
    else:
        request.respond(404, TEXT, "Not Found")


if __name__ == "__main__":
    port, workers = port_and_workers(sys.argv)
    mummy.Server(handler, workers=workers).serve(port, "127.0.0.1")
