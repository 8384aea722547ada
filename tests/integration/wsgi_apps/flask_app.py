"""A Flask application with the things real apps do: routes, JSON, forms, uploads,
a streamed response, cookies, redirects, a custom 500 page and a route that raises."""

import hashlib
from collections.abc import Iterator

from flask import Flask, Response, jsonify, redirect, request


class Boom(Exception):
    """Raised by /boom."""


def create_app(*, custom_500: bool = True) -> Flask:
    """`custom_500=False` lets the exception of /boom out of Flask (PROPAGATE_EXCEPTIONS),
    so that the server's own 500 answers it."""
    app = Flask(__name__)
    if not custom_500:
        app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/")
    def index() -> str:
        return "Hello from Flask"

    @app.get("/json")
    def json_get() -> Response:
        return jsonify(greeting="hello", numbers=[1, 2, 3], query=request.args.to_dict(flat=False))

    @app.post("/json")
    def json_post() -> Response:
        return jsonify(received=request.get_json())

    @app.post("/form")
    def form() -> Response:
        return jsonify(form=request.form.to_dict(flat=False))

    @app.post("/upload")
    def upload() -> Response:
        file = request.files["file"]
        data = file.read()
        return jsonify(
            filename=file.filename,
            content_type=file.content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            note=request.form.get("note"),
        )

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for i in range(5):
                yield f"chunk {i}\n"

        return Response(chunks(), mimetype="text/plain")

    @app.get("/big")
    def big() -> Response:
        return Response("mummy " * 2000, mimetype="text/plain")

    @app.get("/café")
    def cafe() -> str:
        return f"path={request.path}"

    @app.get("/cookies")
    def cookies() -> Response:
        response = jsonify(cookies=request.cookies)
        response.set_cookie("first", "1")
        response.set_cookie("second", "2")
        return response

    @app.get("/where")
    def where() -> Response:
        return jsonify(
            remote_addr=request.remote_addr,
            scheme=request.scheme,
            url=request.url,
            host=request.host,
            script_root=request.script_root,
            path=request.path,
        )

    @app.get("/redirect")
    def go_home() -> Response:
        return redirect("/", code=302)  # type: ignore[return-value]

    @app.get("/boom")
    def boom() -> str:
        raise Boom("the route failed")

    if custom_500:

        @app.errorhandler(500)
        def server_error(error: Exception) -> tuple[str, int]:
            return (
                f"custom 500 page: {type(getattr(error, 'original_exception', error)).__name__}",
                500,
            )

    return app


app = create_app()
