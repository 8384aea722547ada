"""Request headers: GET / prints the Host header and every header, and echoes them back.

Run: .venv-ft/bin/python examples/client_headers.py, then curl -H 'X-Hello: 1' http://localhost:8080/
"""

import os

import mummy

router = mummy.Router()


@router.get("/")
def show_headers(request: mummy.Request) -> None:
    # Lookups ignore case; a repeated header's first value, or all with get_all().
    print("Host:", request.headers.get("host"), flush=True)
    lines = [f"{name}: {value}" for name, value in request.headers.multi_items()]
    print("\n".join(lines), flush=True)
    request.respond(200, {"Content-Type": "text/plain"}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
