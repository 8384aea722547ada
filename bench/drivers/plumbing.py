"""The plumbing ceiling (bench/micro/plumbing.py: epoll, SimpleQueue to N threads,
eventfd back, a fixed response per request head) answering inline and with 4 and 20
threads, beside mummy with 4 and 20 workers, all on 3.13t, all loaded like HTTP/1.1's
`/`: the distance from mummy to the limit of its own design, measured in one run.
--quick: inline and 4 threads."""

from __future__ import annotations

from typing import Any

from harness import BENCH, load
from harness.runner import Context, Group, ServerSpec

TITLE = "Plumbing ceiling: epoll + SimpleQueue + eventfd, fixed response (wrk, `/`)"
THREADS = (0, 4, 20)
WORKERS = (4, 20)
CONNECTIONS = 64


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    groups = []
    for interp in ctx.builds("ft"):
        for threads in THREADS[:2] if ctx.quick else THREADS:
            settings = f"{threads} threads" if threads else "inline (IO thread answers)"
            argv = (
                str(interp.venv_python),
                str(BENCH / "micro/plumbing.py"),
                "{port}",
                str(threads),
            )
            spec = ServerSpec("plumbing ceiling", interp, settings, argv)
            groups.append(Group(spec, [load.wrk("/", "/", CONNECTIONS, warmup_s=ctx.warmup(1))]))
        for workers in () if ctx.quick else WORKERS:
            spec = ctx.mummy(interp, "mummy_app.py", [str(workers)], f"workers={workers}")
            groups.append(Group(spec, [load.wrk("/", "/", CONNECTIONS, warmup_s=ctx.warmup(1))]))
    return groups, {"threads": THREADS, "mummy_workers": WORKERS, "connections": CONNECTIONS}
