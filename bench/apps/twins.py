"""What the bench apps share, so that mummy (mummy_app.py) and its peers (wsgi_app.py,
asgi_app.py, asgi_ws_app.py) do the same work: the hello body, ~1 ms of pure-Python CPU,
the ~100 KB JSON body of the compression benchmarks, and the answer to GET /gil."""

import json
import random
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


def gil_enabled() -> bytes:
    """b"True" or b"False": whether the GIL is on in the serving process."""
    return str(getattr(sys, "_is_gil_enabled", lambda: True)()).encode()


def answer(path: str) -> tuple[int, bytes]:
    """(status, body) of the paths every twin answers alike: `/` hello, `/cpu` ~1 ms of
    pure Python, `/gil`; the apps do `/sleep` their own way (a thread or an await), then
    answer `/`."""
    if path == "/":
        return 200, HELLO
    if path == "/cpu":
        return 200, str(cpu_work()).encode()
    if path == "/gil":
        return 200, gil_enabled()
    return 404, b"Not Found"


def port_and_workers(argv: list[str]) -> tuple[int, int | None]:
    """PORT [WORKERS] from a mummy app's command line (no WORKERS: mummy's default)."""
    return int(argv[1]), int(argv[2]) if len(argv) > 2 else None


def json_body() -> bytes:
    """900 records of words and numbers, ~100 KB of JSON (the same bytes every time)."""
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "mummy", "server", "thread", "python"]
    items = [
        {
            "id": i,
            "name": " ".join(rng.choice(words) for _ in range(3)),
            "score": round(rng.random() * 100, 3),
            "tags": rng.sample(words, 3),
            "active": rng.random() < 0.5,
        }
        for i in range(900)
    ]
    return json.dumps({"items": items}).encode()


async def lifespan(receive: Receive, send: Send) -> None:
    """An ASGI lifespan scope that starts and stops with nothing to do."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
