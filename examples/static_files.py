"""Static files from examples/public/ under /static/, and one route of your own.

GET /static/... serves the directory (index.html for the directory, ETag and
Last-Modified, Range, style.css.gz to clients that accept gzip); nothing outside
it can be reached. GET / redirects to /static/.

Run: .venv-ft/bin/python examples/static_files.py, then open http://localhost:8080/
"""

import os
from pathlib import Path

import mummy

PUBLIC = Path(__file__).resolve().parent / "public"

router = mummy.Router()
router.get("/", lambda request: request.redirect("/static/"))
router.get("/static/**", mummy.StaticFiles(PUBLIC, prefix="/static/"))
# Without the trailing slash, the directory's index as well.
router.get("/static", lambda request: request.redirect("/static/", 308))

server = mummy.Server(router)

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
