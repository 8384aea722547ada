"""Multipart uploads: POST /multipart decodes the form and answers `Multipart POST response`.

Run: .venv-ft/bin/python examples/basic_multipart.py, then open http://localhost:8080/
or:
  curl -F 'field=value' -F 'upload=@README.md' http://localhost:8080/multipart
  curl -F 'empty=' http://localhost:8080/multipart
"""

import os

import mummy

FORM = """<!doctype html>
<form method="post" action="/multipart" enctype="multipart/form-data">
  <input name="field" value="value"> <input type="file" name="upload"> <button>Send</button>
</form>
"""

router = mummy.Router()


@router.get("/")
def form(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/html"}, FORM)


@router.post("/multipart")
def upload(request: mummy.Request) -> None:
    try:
        entries = mummy.multipart.decode_multipart(request)
    except mummy.MummyError as exc:
        request.respond(400, {"Content-Type": "text/plain"}, f"{exc}\n")
        return
    for entry in entries:
        # entry.data is a view into request.body: no copy until you make one.
        has_data = len(entry.data) > 0
        print(f"{entry.name}: filename={entry.filename!r} has data: {has_data}", flush=True)
    request.respond(200, {"Content-Type": "text/plain"}, "Multipart POST response")


if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
