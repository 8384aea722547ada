"""Soak with faults: bench/soak.py (mixed keep-alive, gzip, POST, chunked and WebSocket
load with aborts, resets, oversized and malformed requests and slowloris clients against
bench/apps/soak_app.py) for 600 s on 3.13t, once (a soak is one long run, not rounds).
Its checks: every well-formed request answered correctly, no stray 5xx, fds and threads
back after the load; RSS is reported. Not in --quick: tests/system/test_soak.py runs
a 30 s version on every ./ci/test."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness import BENCH, REPO
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Soak with faults: correctness, fds, threads and RSS under mixed load"
SECONDS = 300  # the README's earlier figures: `bench/soak.py --seconds 600`
CLIENTS = 8


def soak(python: Path, snapshot: Path | None) -> Workload:
    def measure(running: Running, seconds: float) -> Sample:
        del running, seconds  # soak.py starts its own server and runs for SECONDS
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
            out = Path(tmp) / "soak.json"
            argv = [str(python), str(BENCH / "soak.py"), "--seconds", str(SECONDS)]
            argv += ["--clients", str(CLIENTS), "--json", str(out)]
            env = {**os.environ, "PYTHONPATH": str(snapshot)} if snapshot else None
            done = subprocess.run(
                argv, cwd=REPO, capture_output=True, text=True, timeout=SECONDS + 300, env=env
            )
            if not out.exists():
                return Sample({}, argv, f"no result (exit {done.returncode}): {done.stderr[-300:]}")
            result = json.loads(out.read_text())
        argv[-1] = "<tmp>"
        metrics: dict[str, Any] = {}
        for kind, counts in result["well_formed"].items():
            metrics[f"{kind} ok"], metrics[f"{kind} failed"] = counts["ok"], counts["failed"]
        for kind, counts in result["faults"].items():
            metrics[f"{kind} as expected"] = counts["as_expected"]
            metrics[f"{kind} otherwise"] = counts["otherwise"]
        for what in ("fds", "threads"):
            for when, value in result[what].items():
                metrics[f"{what} {when}"] = value
        rss = result["rss_mb"]
        metrics.update({f"rss_mb {k}": v for k, v in rss.items()})
        metrics["rss_growth_flag"] = result["rss_growth_flag"]
        metrics["raising_handler_500s"] = result["log"]["raising_handler_tracebacks"]
        metrics.update({f"check: {k}": v for k, v in result["checks"].items()})
        failed = [k for k, ok in result["checks"].items() if not ok]
        return Sample(metrics, argv, f"checks failed: {', '.join(failed)}" if failed else None)

    return Workload(
        f"{SECONDS} s, {CLIENTS} clients + 2 slowloris",
        {"seconds": SECONDS, "clients": CLIENTS},
        measure,
        main=("get ok", "GETs"),
    )


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    if ctx.quick:
        print("  soak: not in --quick (tests/system/test_soak.py runs 30 s of it)")
        return [], {}
    groups = [
        Group(
            None,
            [soak(interp.venv_python, ctx.snapshot)],
            "mummy (soak_app.py)",
            interp.label,
            once=True,
        )
        for interp in ctx.builds("ft")
    ]
    return groups, {"seconds": SECONDS, "clients": CLIENTS}
