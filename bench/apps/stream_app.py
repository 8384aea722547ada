"""The mummy app of the streams driver: open Server-Sent Events streams with a broadcast to
all of them, and one long streamed body.

- GET /events answers with `request.respond_sse()`, keeps the EventStream in a set and
  sends it an `open` event (so a client that has it knows the stream is registered);
- POST /broadcast sends one `broadcast` event, its id the request's body, to every open
  stream from the handler's thread and answers {"streams": n, "sent": k, "queued_ms": t},
  k being the sends that returned True and t how long the loop of `send` calls took (the
  bytes are then queued for the IO thread; the client measures when they all arrive);
- GET /big?mb=M streams M MiB in 64 KiB chunks of one constant bytes object,
  application/octet-stream, uncompressed (chunked on HTTP/1.1, DATA frames on HTTP/2);
- GET /gil says whether the GIL is on in this process.

Run: .venv-ft/bin/python bench/apps/stream_app.py PORT [WORKERS]
(workers left out: mummy's default)
"""

import json
import sys
import threading
import time
from collections.abc import Iterator

from twins import gil_enabled, port_and_workers

import mummy

CHUNK = bytes(range(256)) * 256  # 64 KiB
CHUNKS_PER_MIB = (1 << 20) // len(CHUNK)
TEXT = {"Content-Type": "text/plain"}

streams: set[mummy.EventStream] = set()
streams_lock = threading.Lock()


def big(mb: int) -> Iterator[bytes]:
    for _ in range(mb * CHUNKS_PER_MIB):
        yield CHUNK


def broadcast(id: str) -> dict[str, float]:
    # Copy under the lock, send outside it: a stream opening meanwhile is not held up.
    with streams_lock:
        everyone = list(streams)
    start = time.perf_counter()
    gone = [s for s in everyone if not s.send(f"broadcast {id}", event="broadcast", id=id)]
    queued_ms = (time.perf_counter() - start) * 1000
    with streams_lock:
        streams.difference_update(gone)
    return {"streams": len(everyone), "sent": len(everyone) - len(gone), "queued_ms": queued_ms}


def handler(request: mummy.Request) -> None:
    if request.path == "/events" and request.method == "GET":
        stream = request.respond_sse()
        with streams_lock:
            streams.add(stream)
        stream.send("open", event="open")
    elif request.path == "/broadcast" and request.method == "POST":
        body = json.dumps(broadcast(request.body.decode()))
        request.respond(200, {"Content-Type": "application/json"}, body)
    elif request.path == "/big" and request.query_params.get("mb", "").isdecimal():
        headers = {"Content-Type": "application/octet-stream"}
        mb = int(request.query_params["mb"])
        request.respond_stream(200, headers, big(mb), compress=False)
    elif request.path == "/gil":
        request.respond(200, TEXT, gil_enabled())
    else:
        request.respond(404, TEXT, "Not Found")


if __name__ == "__main__":
    port, workers = port_and_workers(sys.argv)
    mummy.Server(handler, workers=workers).serve(port, "127.0.0.1")
