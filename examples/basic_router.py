"""Hello, World with a Router: GET / answers, other methods on / get 405, other paths 404.

Run: .venv-ft/bin/python examples/basic_router.py, then curl http://localhost:8080/
"""

import os

import mummy


def index(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")


router = mummy.Router()
router.get("/", index)

if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
