"""WebSockets with the Node.js `ws` client (bench/ws-client). Echo: 100 clients, each
sending a 64-byte text message and waiting for its echo before the next, without and
with permessage-deflate offered, on mummy (3.13t and GIL build, its default workers),
uvicorn (--ws websockets) and granian ASGI on 3.13t; then 16 KiB JSON messages with
deflate offered, with the bytes the server sends per echo (compression at work).
Idle: 10,000 WebSockets opened on mummy (deflate offered): the server's RSS before and
after is the memory a connection costs, then 5 broadcasts to all of them are timed.
--quick: echo without deflate and 200 idle connections, mummy on 3.13t."""

from __future__ import annotations

from typing import Any

from harness import load, peers
from harness.runner import Context, Group

TITLE = "WebSockets: echo and idle connections (Node.js ws client)"
CLIENTS, SIZE = 100, 64
JSON_SIZE = 16 * 1024  # the second echo row: JSON text that deflates, deflate offered
IDLE, BROADCASTS = 10_000, 5


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    load.ensure_ws_client()
    echo = [
        load.ws_echo(CLIENTS, SIZE, deflate, ctx.warmup(2))
        for deflate in (False, True)[: 1 if ctx.quick else 2]
    ]
    if not ctx.quick:
        echo.append(load.ws_echo(CLIENTS, JSON_SIZE, True, ctx.warmup(2), "json"))
    idle, broadcasts = (200, 1) if ctx.quick else (IDLE, BROADCASTS)
    groups = []
    for interp in ctx.builds("ft") if ctx.quick else ctx.builds():
        spec = ctx.mummy(interp, "ws_app.py", [], "default workers, websocket_compression=True")
        groups.append(Group(spec, echo))
        # A server of its own: its RSS before the connections open is not the echo's.
        groups.append(Group(spec, [load.ws_idle(idle, broadcasts)]))
    for interp in ctx.builds("ft"):
        if venv := ctx.peer("uvicorn", interp):
            argv = peers.uvicorn(venv, "asgi_ws_app:app", websockets=True)
            settings = "--ws websockets, --http httptools, 1 process"
            groups.append(Group(ctx.peer_spec("uvicorn", interp, settings, argv), echo))
        if venv := ctx.peer("granian", interp):
            argv = peers.granian(venv, "asgi_ws_app:app", "asgi", None, "auto")
            groups.append(Group(ctx.peer_spec("granian", interp, "ASGI, 1 worker", argv), echo))
    settings = {
        "clients": CLIENTS,
        "size": SIZE,
        "json_size": JSON_SIZE,
        "idle_connections": idle,
        "broadcasts": broadcasts,
    }
    return groups, settings
