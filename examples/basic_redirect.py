"""Redirects: GET / answers 302 with `Location: /second`; GET /second says hello.

Run: .venv-ft/bin/python examples/basic_redirect.py, then curl -L http://localhost:8080/
"""

import os

import mummy


def handler(request: mummy.Request) -> None:
    if request.path == "/" and request.method == "GET":
        # Headers as a list of pairs work as well as a dict.
        request.redirect("/second", status=302)
    elif request.path == "/second" and request.method == "GET":
        request.respond(200, [("Content-Type", "text/plain")], "Hello, World!")
    else:
        request.respond(404, {"Content-Type": "text/plain"}, "Not Found")


if __name__ == "__main__":
    mummy.Server(handler).serve(int(os.environ.get("PORT", "8080")))
