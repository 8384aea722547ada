"""HTTP/2 (h2c, prior knowledge) with h2load: mummy on 3.13t and on the GIL build, granian
2 (`--http 2`, WSGI and ASGI) and hypercorn (ASGI, asyncio) on 3.13t, on `/` (hello) and
`/sleep` (10 ms, then hello): `h2load -c 10 -m 10`, 100 streams in flight, so `/sleep`
can serve at most 10,000 req/s. mummy's workers and granian WSGI's blocking threads: 2 x
cores on `/`, 100 on `/sleep` (granian ASGI and hypercorn await instead). --quick: `/`
on 3.13t alone."""

from __future__ import annotations

from typing import Any

from harness import load, peers
from harness.machine import CORES
from harness.runner import Context, Group, ServerSpec

TITLE = "HTTP/2 (h2c): mummy and its peers (h2load)"
CLIENTS, STREAMS = 10, 10
POOL = {"/": 2 * CORES, "/sleep": CLIENTS * STREAMS}


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    paths = ["/"] if ctx.quick else list(POOL)
    groups = []

    def add(spec: ServerSpec, on: list[str]) -> None:
        groups.append(Group(spec, [load.h2load(p, p, CLIENTS, STREAMS, ctx.warmup(1)) for p in on]))

    for interp in ctx.builds("ft") if ctx.quick else ctx.builds():
        for path in paths:
            workers = POOL[path]
            settings = f"workers={workers}"
            add(ctx.mummy(interp, "mummy_app.py", [str(workers)], settings, "h2"), [path])
    for interp in ctx.builds("ft"):
        if venv := ctx.peer("granian", interp):
            for path in paths:
                argv = peers.granian(venv, "wsgi_app:app", "wsgi", POOL[path], "2")
                settings = f"WSGI, --http 2, 1 worker, --blocking-threads {POOL[path]}"
                add(ctx.peer_spec("granian WSGI", interp, settings, argv, "h2"), [path])
            argv = peers.granian(venv, "asgi_app:app", "asgi", None, "2")
            add(
                ctx.peer_spec("granian ASGI", interp, "ASGI, --http 2, 1 worker", argv, "h2"), paths
            )
        if venv := ctx.peer("hypercorn", interp):
            argv = peers.hypercorn(venv, "asgi_app:app")
            settings = "ASGI, asyncio worker, keep_alive_max_requests 1e9"
            add(ctx.peer_spec("hypercorn", interp, settings, argv, "h2"), paths)
    settings = {"clients": CLIENTS, "streams_per_client": STREAMS, "pool": POOL, "sleep_s": 0.01}
    return groups, settings
