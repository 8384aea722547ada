"""The bench's `/` and `/sleep` as a Flask application, to compare WSGI servers on a real
framework: mummy (WSGIAdapter), gunicorn gthread, waitress and granian.

`/` answers "Hello, World!"; `/sleep` sleeps 10 ms (blocking) first. From bench/apps:

    python wsgi_flask_app.py PORT WORKERS          # mummy; or: python -m mummy --wsgi ...
    gunicorn --worker-class gthread --threads N --bind 127.0.0.1:PORT wsgi_flask_app:app
    waitress-serve --listen=127.0.0.1:PORT --threads=N wsgi_flask_app:app
    granian --interface wsgi --blocking-threads N --port PORT wsgi_flask_app:app

Only the mummy run imports mummy, so the peers' venvs need just Flask.
"""

import sys
import time

from flask import Flask, Response

HELLO = "Hello, World!"

app = Flask(__name__)


@app.get("/")
def hello() -> Response:
    return Response(HELLO, mimetype="text/plain")


@app.get("/sleep")
def sleep() -> Response:
    time.sleep(0.010)
    return Response(HELLO, mimetype="text/plain")


if __name__ == "__main__":
    import mummy
    from mummy.wsgi import WSGIAdapter

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    mummy.Server(WSGIAdapter(app), workers=workers).serve(port, "127.0.0.1")
