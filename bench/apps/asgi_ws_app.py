"""ASGI twin of bench/apps/ws_app.py's echo, for uvicorn (+ websockets) and granian.

A WebSocket on any path echoes every message; HTTP GET /gil says whether the GIL is on
in the serving process. (No broadcast: the websocket driver measures that on mummy only.)
"""

from typing import Any

from twins import Receive, Send, gil_enabled, lifespan


async def echo(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await echo(receive, send)
    else:
        found = scope["path"] == "/gil"
        body = gil_enabled() if found else b""
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send(
            {"type": "http.response.start", "status": 200 if found else 404, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})
