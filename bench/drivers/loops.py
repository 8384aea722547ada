"""Past one IO loop: what one IO thread costs per request, and io_threads=1 vs 2 and
`--processes 2` on this machine.

On `/` (wrk, 64 connections), a 64-byte WebSocket echo (100 Node.js ws clients,
deflate off) and HTTP/2 `/` (h2load -c10 -m10), mummy on 3.13t with `io_threads` 1
and 2 (2 x cores fixed workers), and `/` with `python -m mummy --processes 2` on both
builds beside the GIL build's single process. Every round records each IO thread's
CPU (threads named mummy-io*, read from /proc) and `io_us_per_request`: their CPU per
request or echo, so 1e6 / it is the most one loop can serve; for --processes, each
process's CPU (the spread over the children). --quick: `/` with 1 and 2 loops on
3.13t."""

from __future__ import annotations

import os
from typing import Any

from harness import APPS, load
from harness.machine import CORES, Interpreter
from harness.runner import Context, Group, ServerSpec

TITLE = "IO loops and processes: io_threads 1 vs 2, --processes 2 (wrk, ws, h2load)"
WORKERS = 2 * CORES
CONNECTIONS = 64
WS_CLIENTS, WS_SIZE = 100, 64
H2_CLIENTS, H2_STREAMS = 10, 10


def processes_spec(ctx: Context, interp: Interpreter, processes: int) -> ServerSpec:
    """`python -m mummy mummy_app:handler --processes N`, the bench app through the CLI."""
    path = os.pathsep.join(p for p in (str(ctx.snapshot or ""), str(APPS)) if p)
    argv = (
        str(interp.venv_python),
        *("-m", "mummy", "mummy_app:handler", "--host", "127.0.0.1", "--port", "{port}"),
        *("--workers", str(WORKERS), "--processes", str(processes)),
    )
    settings = f"--processes {processes}, --workers {WORKERS} each"
    return ServerSpec("mummy", interp, settings, argv, (("PYTHONPATH", path),))


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    if not ctx.quick:
        load.ensure_ws_client()
    groups = []
    for interp in ctx.builds("ft"):
        for loops in (1, 2):
            env = {"BENCH_IO_THREADS": str(loops)}
            settings = f"io_threads={loops}, workers={WORKERS}"
            http = ctx.mummy(interp, "mummy_app.py", [str(WORKERS)], settings, env=env)
            groups.append(Group(http, [load.wrk("/", "/", CONNECTIONS, warmup_s=ctx.warmup(1))]))
            if ctx.quick:
                continue
            ws = ctx.mummy(interp, "ws_app.py", [str(WORKERS)], settings, env=env)
            groups.append(Group(ws, [load.ws_echo(WS_CLIENTS, WS_SIZE, False, ctx.warmup(2))]))
            h2 = ctx.mummy(interp, "mummy_app.py", [str(WORKERS)], settings, "h2", env=env)
            workload = load.h2load("h2 /", "/", H2_CLIENTS, H2_STREAMS, ctx.warmup(1))
            groups.append(Group(h2, [workload]))
    if not ctx.quick:
        for interp in ctx.builds("gil"):  # the GIL build's one process, beside its two
            settings = f"io_threads=1, workers={WORKERS}"
            http = ctx.mummy(interp, "mummy_app.py", [str(WORKERS)], settings)
            groups.append(Group(http, [load.wrk("/", "/", CONNECTIONS, warmup_s=ctx.warmup(1))]))
        for interp in ctx.builds():
            groups.append(
                Group(
                    processes_spec(ctx, interp, 2),
                    [load.wrk("/", "/", CONNECTIONS, warmup_s=ctx.warmup(1))],
                )
            )
    settings = {
        "workers": WORKERS,
        "connections": CONNECTIONS,
        "ws_clients": WS_CLIENTS,
        "ws_size": WS_SIZE,
        "h2_clients": H2_CLIENTS,
        "h2_streams": H2_STREAMS,
    }
    return groups, settings
