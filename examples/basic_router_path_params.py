"""Path params: GET /objects/@id answers `Object: <id>`.

Run: .venv-ft/bin/python examples/basic_router_path_params.py,
then curl http://localhost:8080/objects/123
"""

import os

import mummy

router = mummy.Router()


@router.get("/objects/@id")
def get_object(request: mummy.Request) -> None:
    object_id = request.path_params["id"]
    request.respond(200, {"Content-Type": "text/plain"}, f"Object: {object_id}")


if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
