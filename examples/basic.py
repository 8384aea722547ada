"""Hello, World without a router: GET / answers, other methods get 405, other paths 404.

Run: .venv-ft/bin/python examples/basic.py, then curl http://localhost:8080/
"""

import os

import mummy


def handler(request: mummy.Request) -> None:
    if request.path != "/":
        request.respond(404, {"Content-Type": "text/plain"}, "Not Found")
    elif request.method in ("GET", "HEAD"):
        request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")
    else:
        request.respond(405, {"Allow": "GET, HEAD"})


server = mummy.Server(handler)

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
