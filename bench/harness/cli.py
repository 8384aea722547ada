"""./bench/run: every benchmark driver in bench/drivers/ (or those named), each a table of
servers x workloads measured in interleaved rounds, each written as JSON.

    ./bench/run                          # everything: 3 rounds of 4 s per cell, ~40 min
    ./bench/run --quick --servers mummy  # a smoke run of every driver, mummy alone
    ./bench/run --only http1,h2 --rounds 5 --save

A figure is the median of its rounds; the rounds go A B A B ... over all cells of a
driver, and a round during which other processes used more than 0.2 cores is tried again
(--retries) and, if still over, marked disturbed. Before each server starts, the run
waits for other benchmarks' load generators (wrk, h2load, node) and for the cores to
settle. Results: bench/results/<driver>-<time>.json (scratch, git-ignored); --save also
copies each to docs/results/<driver>.json, which bench/report.py renders into
docs/performance.md, the README's table and the charts. Server logs:
bench/results/logs/. mummy runs from a copy of mummy/ taken at the start (--live: from
the tree). Interpreters: $MUMMY_PYTHON_FT and $MUMMY_PYTHON_GIL, else the builds
./ci/provision caches; peers get venvs under bench/.venvs/ (made from PyPI on first use,
pinned in bench/harness/peers.py). This file only orchestrates: any python3 >= 3.11.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import signal
import sys
import time

from drivers import NAMES

from harness import LOGS, REPO, load, machine, procs
from harness.peers import PINNED
from harness.results import Record
from harness.runner import Context, Options, run_plan


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./bench/run", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 round, 1 s cells, fewer cells"
    )
    parser.add_argument(
        "--only", help=f"comma-separated drivers (default: all of {', '.join(NAMES)})"
    )
    parser.add_argument(
        "--servers",
        help="comma-separated peers besides mummy (default: all of"
        f" {', '.join(PINNED)}; `mummy`: mummy alone)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per cell (3; --quick: 1)")
    parser.add_argument("--duration", type=float, help="seconds per cell and round (4; --quick: 1)")
    parser.add_argument(
        "--retries", type=int, help="tries again of a disturbed round (1; --quick: 0)"
    )
    parser.add_argument(
        "--max-wait", type=float, help="seconds to wait for another benchmark (900)"
    )
    parser.add_argument("--save", action="store_true", help="copy each result to docs/results/")
    parser.add_argument("--live", action="store_true", help="run mummy from the working tree")
    parser.add_argument("--list", action="store_true", help="list the drivers and exit")
    args = parser.parse_args()
    args.drivers = args.only.split(",") if args.only else list(NAMES)
    if unknown := set(args.drivers) - set(NAMES):
        parser.error(f"unknown drivers {sorted(unknown)}: choose from {', '.join(NAMES)}")
    known = {"mummy", *PINNED}
    if args.servers and not set(args.servers.split(",")) <= known:
        parser.error(f"--servers takes names from {', '.join(sorted(known))}")
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (1.0 if args.quick else 4.0)
    if args.quick and args.save:
        parser.error("a --quick run is a smoke run, not figures: it is not saved to docs/results/")
    if not (1 <= rounds <= 20 and 1 <= duration <= 120):
        parser.error("--rounds is 1..20, --duration 1..120 seconds")
    args.options = Options(
        quick=args.quick,
        rounds=rounds,
        duration=duration,
        retries=args.retries if args.retries is not None else (0 if args.quick else 1),
        servers=frozenset(args.servers.split(",")) - {"mummy"} if args.servers else None,
        max_wait_s=args.max_wait if args.max_wait is not None else (0 if args.quick else 900),
        settle_s=0 if args.quick else 10,
    )
    return args


def main() -> int:
    args = parse_args()
    if args.list:
        for name in NAMES:
            print(f"{name:12} {importlib.import_module(f'drivers.{name}').TITLE}")
        return 0
    if sys.platform != "linux":
        sys.exit("bench/run needs Linux (/proc, epoll, process groups)")
    for tool in ("wrk", "h2load", "nghttp"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install wrk nghttp2-client")
    procs.raise_nofile()
    # SIGTERM as an exit, so that the servers and what a driver started (a database) are
    # stopped on the way out, as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    interpreters, missing = machine.find_interpreters()
    if "ft" not in interpreters:
        sys.exit(f"no free-threaded interpreter: {missing['ft']}")
    for key, why in missing.items():
        print(f"skipping every {key} cell: {why}", flush=True)
    shutil.rmtree(LOGS, ignore_errors=True)
    revision = machine.mummy_revision()
    snapshot = None if args.live else procs.snapshot_mummy()
    status = 0
    started = time.monotonic()
    for name in args.drivers:
        driver = importlib.import_module(f"drivers.{name}")
        print(f"== {name}: {driver.TITLE}", flush=True)
        ctx = Context(args.options, interpreters, snapshot, dict(missing))
        with ctx.closing:  # what the driver started (a database) stops here
            try:
                groups, settings = driver.plan(ctx)
            except RuntimeError as exc:
                print(f"  {name} cannot run: {exc}", flush=True)
                status = 1
                continue
            record = Record(
                driver=name,
                title=driver.TITLE,
                quick=args.quick,
                invocation=["./bench/run", *sys.argv[1:]],
                machine={**machine.describe(), **revision},
                interpreters={i.label: i.describe() for i in interpreters.values()},
                tools=load.versions(),
                peers=ctx.peers,
                settings={
                    "rounds": args.options.rounds,
                    "duration_s": args.options.duration,
                    "retries": args.options.retries,
                    "disturbed_above_cores": machine.DISTURBED_CORES,
                    "mummy": "working tree" if args.live else "copy of mummy/ taken at the start",
                    **settings,
                },
                skipped=ctx.skipped,
                cells=run_plan(groups, args.options),
            )
            for path in record.write(args.save):
                print(f"  wrote {path.relative_to(REPO)}", flush=True)
            if any(r.error for c in record.cells for r in c.rounds):
                status = 1
    print(f"done in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return status
