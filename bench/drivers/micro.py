"""Micro-benchmarks in bench/micro/, each run on 3.13t and on the GIL build: ring.py (the
hand-off between threads: SimpleQueue, a lock-and-conditions slot ring, mummy's TaskRing
+ Mailbox; items/s), router.py (Router.match with 10 and 1,000 literal routes; ns per
match), request_budget.py (us per HTTP/1.1 request by step, on one thread),
h2_session.py (us per HTTP/2 request in mummy's h2 session) and compression_levels.py
(bytes and single-thread MB/s of each gzip and zstd level on the ~100 KB JSON body).
The plumbing ceiling has a driver of its own."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from harness import BENCH
from harness.machine import Interpreter
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Micro-benchmarks: thread hand-off, routing, compression levels"
# script: (what it measures, its main metric and unit, extra arguments; --quick's)
SCRIPTS = {
    "ring.py": (
        "items/s, 1 producer -> 8 consumers -> 1 collector",
        ("SimpleQueue", "items/s"),
        [],
        ["--items", "20000"],
    ),
    "router.py": (
        "ns per Router.match",
        ("miss (404), 1,000 literals", "ns"),
        [],
        ["--iterations", "2000"],
    ),
    "request_budget.py": (
        "us per request, step by step (one thread)",
        ("total", "us"),
        [],
        ["--requests", "2000"],
    ),
    "h2_session.py": (
        "us per HTTP/2 request in the h2 session (one thread)",
        ("us per request (session: parse, answer, frame)", "us"),
        [],
        ["--rounds", "50"],
    ),
    "compression_levels.py": (
        "bytes and MB/s per level",
        ("zstd 3 MB/s", "MB/s"),
        [],
        ["--seconds", "0.05"],
    ),
}


def script(name: str, interp: Interpreter, snapshot: Path | None, quick: bool) -> Workload:
    what, main, args, quick_args = SCRIPTS[name]

    def measure(running: Running, seconds: float) -> Sample:
        del running, seconds
        argv = [
            str(interp.venv_python),
            str(BENCH / "micro" / name),
            *(quick_args if quick else args),
            "--json",
        ]
        env = {**os.environ, "PYTHONPATH": str(snapshot)} if snapshot else None
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        if done.returncode != 0:
            return Sample({}, argv, done.stderr.strip()[-300:])
        return Sample(json.loads(done.stdout.strip().splitlines()[-1]), argv)

    return Workload(what, {"script": f"bench/micro/{name}"}, measure, main=main)


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    groups = []
    for interp in ctx.builds("ft") if ctx.quick else ctx.builds():
        for name in SCRIPTS:
            groups.append(
                Group(None, [script(name, interp, ctx.snapshot, ctx.quick)], name, interp.label)
            )
    return groups, {}
