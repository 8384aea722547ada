"""The compression benchmark's app (bench/compression.py): `/` answers the ~100 KB JSON body
of bench/compression_levels.py, compressed by mummy with whatever the client's
Accept-Encoding picks; `/gil` says whether the GIL is on in this process.

Run: .venv-ft/bin/python bench/apps/compression_app.py [port] [workers]
(workers left out: mummy's default, 10 x CPUs)
"""

import sys
from pathlib import Path

import mummy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from compression_levels import sample_body  # bench/ is not a package

BODY = sample_body()
JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}


def handler(request: mummy.Request) -> None:
    if request.path == "/":
        request.respond(200, JSON, BODY)
    elif request.path == "/gil":
        request.respond(200, TEXT, str(sys._is_gil_enabled()))
    else:
        request.respond(404, TEXT, "Not Found")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    mummy.Server(handler, workers=workers).serve(port, "127.0.0.1")
