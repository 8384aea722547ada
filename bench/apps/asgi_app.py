"""ASGI twin of mummy_app.py, for uvicorn, granian ASGI and hypercorn (async, so it differs
on purpose): `/sleep` is `await asyncio.sleep(0.01)` (the event loop serves on meanwhile,
where the thread-pool servers park a thread) and `/cpu` runs inline on the event loop."""

import asyncio
from typing import Any

from twins import Receive, Send, answer, lifespan


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/sleep":
        await asyncio.sleep(0.010)
        path = "/"
    status, body = answer(path)
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
