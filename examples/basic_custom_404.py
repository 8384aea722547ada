"""A custom 404 page: any path but / answers 404 with `<h1>I'm not here</h1>`.

Run: .venv-ft/bin/python examples/basic_custom_404.py, then curl -i http://localhost:8080/nope
"""

import os

import mummy


def index(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")


def not_found(request: mummy.Request) -> None:
    # For HEAD requests the server sends the headers (Content-Length included), no body.
    request.respond(404, {"Content-Type": "text/html"}, "<h1>I'm not here</h1>")


router = mummy.Router(not_found_handler=not_found)
router.get("/", index)

if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
