"""The GIL vs no-GIL figure: `/cpu` (~1 ms of pure Python per request) with 1 and 2
workers on each build, wrk -t1 -c8. The free-threaded build can run Python on both
cores; the GIL build cannot. bench/report.py gives 2 workers ÷ 1 per build."""

from __future__ import annotations

from typing import Any

from harness import load
from harness.runner import Context, Group

TITLE = "Scaling: /cpu with 1 and 2 workers on each build (wrk)"


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    groups = []
    for interp in ctx.builds():
        for workers in (1, 2):
            spec = ctx.mummy(interp, "mummy_app.py", [str(workers)], f"workers={workers}")
            groups.append(
                Group(spec, [load.wrk("/cpu", "/cpu", 8, threads=1, warmup_s=ctx.warmup(1))])
            )
    return groups, {"connections": 8, "wrk_threads": 1}
