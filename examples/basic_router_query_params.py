"""Query params: GET /search?name=foo answers `Name: foo`.

Run: .venv-ft/bin/python examples/basic_router_query_params.py,
then curl 'http://localhost:8080/search?name=foo'
"""

import os

import mummy

router = mummy.Router()


@router.get("/search")
def search(request: mummy.Request) -> None:
    # A missing param reads as "", as in Mummy; `get` chooses the default.
    name = request.query_params.get("name", "")
    request.respond(200, {"Content-Type": "text/plain"}, f"Name: {name}")


if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
