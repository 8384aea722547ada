"""A Flask application served by mummy: Flask's routing, mummy's threads.

Run: .venv-ft/bin/python examples/wsgi_flask.py (needs `pip install flask`), then
curl http://localhost:8080/ and curl -d name=mummy http://localhost:8080/greet
"""

import os
import threading

from flask import Flask, jsonify, request

import mummy
from mummy.wsgi import WSGIAdapter

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "Hello from Flask on mummy!\n"


@app.post("/greet")
def greet() -> dict[str, str]:
    return {"greeting": f"Hello, {request.form.get('name', 'stranger')}!"}


@app.get("/thread")
def thread() -> object:
    return jsonify(worker=threading.current_thread().name)


server = mummy.Server(WSGIAdapter(app))

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
