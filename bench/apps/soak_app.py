"""The mummy app for bench/soak.py: a few routes whose answers the client can check.

- GET /hello: "hello";
- GET /text?n=N: N bytes of text (compressed when the client accepts gzip);
- GET /big: 2 MB, never compressed (for disconnects mid-response);
- POST /echo: the request body back;
- GET /slow?ms=N: sleeps N ms, then "slept";
- GET /raise: the handler raises (mummy answers 500);
- GET /ws: upgrades; the WebSocket echoes TEXT and BINARY messages;
- GET /gil: whether the GIL is on.

Run: .venv-ft/bin/python bench/apps/soak_app.py PORT; serves on 127.0.0.1 until SIGTERM
or SIGINT.
"""

import signal
import sys
import threading
import time

from twins import gil_enabled

import mummy

TEXT = {"Content-Type": "text/plain"}
BINARY = {"Content-Type": "application/octet-stream"}
BIG = bytes(range(256)) * (2 * 1024 * 1024 // 256)
ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789 \n"


def text_body(n: int) -> bytes:
    """What GET /text?n=N answers; the client computes the same bytes."""
    return (ALPHABET * (n // len(ALPHABET) + 1))[:n]


def handler(request: mummy.Request) -> None:
    path = request.path
    if path == "/hello":
        request.respond(200, TEXT, "hello")
    elif path == "/text":
        request.respond(200, TEXT, text_body(int(request.query_params.get("n", "0"))))
    elif path == "/big":
        request.respond(200, BINARY, BIG, compress=False)
    elif path == "/echo" and request.method == "POST":
        request.respond(200, BINARY, request.body, compress=False)
    elif path == "/slow":
        time.sleep(int(request.query_params.get("ms", "0")) / 1000)
        request.respond(200, TEXT, "slept")
    elif path == "/raise":
        raise RuntimeError("raised on purpose by the soak app")
    elif path == "/ws":
        request.upgrade_to_websocket()
    elif path == "/gil":
        request.respond(200, TEXT, gil_enabled())
    else:
        request.respond(404, TEXT, "Not Found")


def websocket_handler(
    ws: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    if message is not None and message.kind in (mummy.MessageKind.TEXT, mummy.MessageKind.BINARY):
        ws.send(message.data, message.kind)


def main() -> None:
    server = mummy.Server(
        handler,
        websocket_handler,
        workers=16,
        header_timeout=2.0,
        body_timeout=5.0,
        keep_alive_timeout=5.0,
        max_headers_len=8192,
        max_body_len=1 << 20,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    server.start(int(sys.argv[1]), "127.0.0.1")
    while not stop.wait(0.5):
        pass
    server.close(timeout=5.0)


if __name__ == "__main__":
    sys.exit(main())
