"""Compression with wrk: the ~100 KB JSON body (bench/apps/compression_app.py), compressed
by mummy for every response at its default levels (zstd 3, gzip 5), asked for with
`Accept-Encoding: zstd` and `gzip`, on 3.13t and on the GIL build, with 1, 2 and 4
workers and with mummy's default (the app not told): does compression scale with workers? One server
per (build, workers), both codings measured on it; wrk -t2 -c32. bench/report.py takes
the scaling from 1 worker within each round. --quick: zstd, 1 and 2 workers, 3.13t."""

from __future__ import annotations

from typing import Any

from harness import load, procs
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Compression: a ~100 KB JSON response, zstd and gzip, by workers (wrk)"
DEFAULT = "default"  # mummy.Server's own choice of workers
CONNECTIONS = 32


def coding(name: str, warmup_s: float) -> Workload:
    """wrk with that Accept-Encoding, after checking the server answers with it; adds the
    compressed body's Content-Length."""
    headers = {"Accept-Encoding": name}
    work = load.wrk(name, "/", CONNECTIONS, headers=headers, warmup_s=warmup_s)
    timed = work.measure

    def measure(running: Running, seconds: float) -> Sample:
        status, fields, _ = procs.http_get(running.port, "/", {"Accept-Encoding": name})
        if status != 200 or fields.get("content-encoding") != name:
            return Sample(
                {}, [], f"answered {status}, Content-Encoding {fields.get('content-encoding')}"
            )
        sample = timed(running, seconds)
        sample.metrics["body_bytes"] = int(fields["content-length"])
        return sample

    work.measure = measure
    return work


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    codings = ["zstd"] if ctx.quick else ["zstd", "gzip"]
    counts = ["1", "2"] if ctx.quick else ["1", "2", "4", DEFAULT]
    groups = []
    for interp in ctx.builds("ft") if ctx.quick else ctx.builds():
        for workers in counts:
            args = [] if workers == DEFAULT else [workers]
            spec = ctx.mummy(interp, "compression_app.py", args, f"workers={workers}")
            groups.append(Group(spec, [coding(c, ctx.warmup(1)) for c in codings]))
    settings = {"workers": counts, "connections": CONNECTIONS}
    return groups, settings
