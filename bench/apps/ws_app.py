"""The mummy app of the websocket driver: WebSocket echo, and a broadcast to every client.

- GET /ws upgrades; the WebSocket echoes every TEXT and BINARY message;
- POST /broadcast sends its body, as text, to every open WebSocket and answers
  {"clients": n, "queued_ms": t}, t being how long the loop of `send` calls took (the
  frames are then queued for the IO thread; the client measures when they all arrive);
- GET /gil says whether the GIL is on in this process.

Run: .venv-ft/bin/python bench/apps/ws_app.py PORT [WORKERS]
"""

import json
import os
import sys
import threading
import time

from twins import gil_enabled, port_and_workers

import mummy

TEXT = {"Content-Type": "text/plain"}

clients: set[mummy.WebSocket] = set()
clients_lock = threading.Lock()


def handler(request: mummy.Request) -> None:
    if request.path == "/ws":
        request.upgrade_to_websocket()
    elif request.path == "/broadcast" and request.method == "POST":
        text = request.body.decode()
        with clients_lock:
            everyone = list(clients)
        start = time.perf_counter()
        for websocket in everyone:
            websocket.send(text)
        queued_ms = (time.perf_counter() - start) * 1000
        body = json.dumps({"clients": len(everyone), "queued_ms": queued_ms})
        request.respond(200, {"Content-Type": "application/json"}, body)
    elif request.path == "/gil":
        request.respond(200, TEXT, gil_enabled())
    else:
        request.respond(404, TEXT, "Not Found")


def websocket_handler(
    websocket: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    if event is mummy.Event.OPEN:
        with clients_lock:
            clients.add(websocket)
    elif event is mummy.Event.CLOSE:
        with clients_lock:
            clients.discard(websocket)
    elif message is not None and message.kind in (mummy.MessageKind.TEXT, mummy.MessageKind.BINARY):
        websocket.send(message.data, message.kind)


if __name__ == "__main__":
    port, workers = port_and_workers(sys.argv)
    io_threads = int(os.environ.get("BENCH_IO_THREADS", "1"))
    server = mummy.Server(handler, websocket_handler, workers=workers, io_threads=io_threads)
    server.serve(port, "127.0.0.1")
