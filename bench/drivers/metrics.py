"""What Prometheus metrics cost: `/` (wrk, 64 connections, 2 x cores workers) with
`metrics_port` unset and set, on both builds, in one run. A scraper reads /metrics
once a second during each measured run with metrics on (Prometheus's default is every
15 s). --quick: 3.13t only."""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

from harness import HOST, load, procs
from harness.machine import CORES
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Metrics: `/` with metrics_port unset and set (wrk)"
WORKERS = 2 * CORES
CONNECTIONS = 64


def scraped(workload: Workload, port: int) -> Workload:
    """`workload`, with /metrics on `port` read every second while it runs."""

    def measure(running: Running, seconds: float) -> Sample:
        stop = threading.Event()
        scrapes = []

        def scraper() -> None:
            while not stop.wait(1.0):
                with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
                    scrapes.append(len(r.read()))

        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        try:
            sample = workload.measure(running, seconds)
        finally:
            stop.set()
            thread.join(10)
        sample.metrics["scrapes"] = len(scrapes)
        return sample

    return Workload(workload.name, workload.params, measure, workload.warmup)


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    groups = []
    for interp in ctx.builds("ft") if ctx.quick else ctx.builds():
        for on in (False, True):
            env = {"BENCH_METRICS_PORT": str(port := procs.free_port())} if on else {}
            settings = f"workers={WORKERS}, metrics {'on' if on else 'off'}"
            spec = ctx.mummy(interp, "mummy_app.py", [str(WORKERS)], settings, env=env)
            workload = load.wrk("/", "/", CONNECTIONS, warmup_s=ctx.warmup(1))
            groups.append(Group(spec, [scraped(workload, port) if on else workload]))
    return groups, {"workers": WORKERS, "connections": CONNECTIONS, "scrape_every_s": 1.0}
