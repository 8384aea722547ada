"""The mummy app of the static driver: `mummy.StaticFiles(DIRECTORY, prefix="/static/")`
for GET /static/..., `/gil` whether the GIL is on, anything else 404.

Run: .venv-ft/bin/python bench/apps/static_app.py PORT DIRECTORY
(workers: mummy's default; a file is sent by the IO thread, not a worker)
"""

import sys

from twins import gil_enabled

import mummy

TEXT = {"Content-Type": "text/plain"}


def main(port: int, directory: str) -> None:
    files = mummy.StaticFiles(directory, prefix="/static/")

    def handler(request: mummy.Request) -> None:
        if request.path.startswith("/static/"):
            files(request)
        elif request.path == "/gil":
            request.respond(200, TEXT, gil_enabled())
        else:
            request.respond(404, TEXT, "Not Found")

    mummy.Server(handler).serve(port, "127.0.0.1")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
