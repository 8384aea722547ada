"""HTTP/1.1 with wrk: mummy on 3.13t and on the GIL build, and its peers (granian WSGI,
uvicorn + httptools ASGI, gunicorn gthread, waitress) on both, on `/` (hello, 64
connections), `/sleep` (a blocking 10 ms sleep, 100 connections) and `/cpu` (~1 ms of
pure Python, 64 connections); plus mummy on 3.13t with 2, 8 and 20 workers on `/` and
`/cpu` (the sweep). Thread pools are 2 x cores on `/` and `/cpu` and 100 on `/sleep`;
uvicorn is async and has none; gunicorn x2 (two processes) runs on the GIL build only.
Then the defaults group on 3.13t, every path: mummy with no `workers` (its adaptive pool),
granian with its own defaults and granian `--blocking-threads 128`, as a new user would
try them. --quick: `/` on 3.13t alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import load, peers
from harness.machine import CORES, Interpreter
from harness.runner import Context, Group, ServerSpec

TITLE = "HTTP/1.1: mummy and its peers (wrk)"
POOL = 2 * CORES  # thread pools on `/` and `/cpu`
SLEEP_POOL = 100  # on `/sleep`: a thread per connection
CONNECTIONS = {"/": 64, "/sleep": 100, "/cpu": 64}
SWEEP = (2, 8, 20)
BIG_POOL = 128  # granian's best setting for `/sleep`, in the defaults group
DEFAULTS = {
    "mummy": "defaults (adaptive pool)",
    "granian": "WSGI, 1 worker, defaults",
    "granian-big": f"WSGI, 1 worker, --blocking-threads {BIG_POOL}",
}


def pooled_peers(ctx: Context, interp: Interpreter, pool: int) -> list[ServerSpec]:
    specs = []
    if venv := ctx.peer("granian", interp):
        argv = peers.granian(venv, "wsgi_app:app", "wsgi", pool, "auto")
        settings = f"WSGI, 1 worker, --blocking-threads {pool}"
        specs.append(ctx.peer_spec("granian", interp, settings, argv))
    if venv := ctx.peer("gunicorn", interp):
        argv = peers.gunicorn(venv, "wsgi_app:app", 1, pool)
        settings = f"gthread, 1 process, --threads {pool}"
        specs.append(ctx.peer_spec("gunicorn", interp, settings, argv))
        if interp.key == "gil":
            argv = peers.gunicorn(venv, "wsgi_app:app", 2, pool // 2)
            settings = f"gthread, 2 processes, --threads {pool // 2} each"
            specs.append(ctx.peer_spec("gunicorn x2", interp, settings, argv))
    if venv := ctx.peer("waitress", interp):
        argv = peers.waitress(venv, "wsgi_app:app", pool)
        specs.append(ctx.peer_spec("waitress", interp, f"threads={pool}", argv))
    return specs


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    by_pool = (
        {POOL: ["/"], SLEEP_POOL: []}
        if ctx.quick
        else {POOL: ["/", "/cpu"], SLEEP_POOL: ["/sleep"]}
    )
    groups: list[Group] = []

    def add(spec: ServerSpec, paths: list[str]) -> None:
        if paths:
            groups.append(
                Group(spec, [load.wrk(p, p, CONNECTIONS[p], warmup_s=ctx.warmup(1)) for p in paths])
            )

    builds = ctx.builds("ft") if ctx.quick else ctx.builds()
    for interp in builds:
        for pool, paths in by_pool.items():
            add(ctx.mummy(interp, "mummy_app.py", [str(pool)], f"workers={pool}"), paths)
    for interp in [] if ctx.quick else ctx.builds("ft"):
        for workers in (w for w in SWEEP if w != POOL):
            spec = ctx.mummy(interp, "mummy_app.py", [str(workers)], f"workers={workers}")
            add(spec, ["/", "/cpu"])
    for interp in builds:
        for pool, paths in by_pool.items():
            for spec in pooled_peers(ctx, interp, pool):
                add(spec, paths)
        if venv := ctx.peer("uvicorn", interp):
            argv = peers.uvicorn(venv, "asgi_app:app")
            settings = "ASGI, httptools, asyncio loop, 1 worker"
            add(
                ctx.peer_spec("uvicorn", interp, settings, argv),
                [p for paths in by_pool.values() for p in paths],
            )
    for interp in [] if ctx.quick else ctx.builds("ft"):
        add_defaults(ctx, interp, lambda spec: add(spec, list(CONNECTIONS)))
    settings = {"pool": POOL, "sleep_pool": SLEEP_POOL, "sweep": SWEEP, "connections": CONNECTIONS}
    return groups, settings | {"defaults": list(DEFAULTS.values())}


def add_defaults(ctx: Context, interp: Interpreter, add: Callable[[ServerSpec], None]) -> None:
    """The defaults group: the settings a new user starts with, every path."""
    add(ctx.mummy(interp, "mummy_app.py", [], DEFAULTS["mummy"]))
    if venv := ctx.peer("granian", interp):
        for key, threads in (("granian", None), ("granian-big", BIG_POOL)):
            argv = peers.granian(venv, "wsgi_app:app", "wsgi", threads, "auto")
            add(ctx.peer_spec("granian", interp, DEFAULTS[key], argv))
