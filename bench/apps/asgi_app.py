"""ASGI twin of examples/bench_app.py, for uvicorn (which is async, so it differs on purpose).

`/` hello; `/sleep` `await asyncio.sleep(0.01)` then hello (the event loop keeps serving
meanwhile, where the thread-pool servers park a thread in `time.sleep`); `/cpu` the same
~1 ms pure-Python loop, run inline on the event loop; `/gil` (not benchmarked) says whether
the GIL is on in the serving process.
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

HELLO = b"Hello, World!"

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def cpu_work() -> int:
    total = 0
    for i in range(20_000):
        total += i * i % 7
    return total


def gil_enabled() -> bool:
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    status = 200
    if path == "/":
        body = HELLO
    elif path == "/sleep":
        await asyncio.sleep(0.010)
        body = HELLO
    elif path == "/cpu":
        body = str(cpu_work()).encode()
    elif path == "/gil":
        body = str(gil_enabled()).encode()
    else:
        status, body = 404, b"Not Found"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
