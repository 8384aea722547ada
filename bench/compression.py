#!/usr/bin/env python3
"""Issue 6: does response compression scale with workers? req/s of a ~100 KB JSON response
compressed with zstd and with gzip, on 3.13t and on the GIL build, at 1, 2, 4 and the
default number of workers, measured with wrk.

    ./bench/compression.py                      # 5 s per cell, 3 rounds
    ./bench/compression.py --workers 1,2 --rounds 5 --name compression-workers-1-2
    ./bench/compression.py --workers 1,2 --codings zstd --builds ft

Serves `bench/apps/compression_app.py` (the body of bench/compression_levels.py, compressed
on the workers by mummy's defaults: zstd level 3, gzip level 5) with `.venv-ft` (3.13t)
and `.venv-gil` (3.13). Each cell is `wrk -t2 -c<conns> -d<secs>s --latency -H
"Accept-Encoding: <coding>"` after a 1 s warm-up; one server per (build, workers),
started fresh every round, both codings on it. Rounds go round-robin over all cells, so
that a noisy minute on this shared machine spreads over every cell instead of one.

Noise: before each server starts we wait until no other `wrk`, `node` or `h2load`
(another benchmark) is running and, for up to --quiet-wait seconds, until other processes
leave the cores idle. A sample during which they used more than 0.2 cores is run again
(--retries times) and the quietest attempt kept; a sample still above that is "disturbed".
A cell's req/s is the median of its quiet rounds (of all rounds when none was quiet, and
then flagged). The scaling ratio is taken within each round (the 1-worker server ran
moments before) and its median over the rounds where both samples were quiet reported,
with their count. Every sample is kept in the JSON.

Bytes per response: the body's Content-Length (from one request with that
Accept-Encoding) and wrk's bytes read ÷ requests (head included). Loopback only; wrk
shares the cores with the server. Writes bench/results/NAME.md and .json (NAME: --name,
`compression` by default) and a copy of both in bench/results/runs/; server logs go to
bench/results/logs/compression-*.log. This file only orchestrates: any python3 >= 3.11
runs it. bench/report.py turns the JSON into docs/performance.md and a chart.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "bench/apps/compression_app.py"
RESULTS = REPO / "bench/results"
RUNS = RESULTS / "runs"
LOGS = RESULTS / "logs"

HOST = "127.0.0.1"
CORES = os.cpu_count() or 1
DEFAULT_WORKERS = 10 * CORES  # mummy.Server's default
BUILDS = {"ft": "3.13t", "gil": "3.13"}
WRK_THREADS = 2
WARMUP_S = 1
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
QUIET_WAIT_S = 1800  # the longest we wait for another benchmark to finish
OTHER_CPU_WARN = 0.2  # cores used by unrelated processes before a cell is flagged
CLK_TCK = os.sysconf("SC_CLK_TCK")
OTHER_BENCHMARKS = ("wrk", "node", "h2load")  # load generators of our other benchmarks


@dataclass
class Cell:
    """One (build, coding, workers) measurement; `samples` holds one entry per round."""

    build: str  # "ft" or "gil"
    interpreter: str  # "3.13t" or "3.13"
    coding: str
    workers: int
    default_workers: bool
    connections: int
    rps: float | None = None  # median over the quiet rounds (all rounds if none was)
    p99_ms: float | None = None  # of the median round
    body_bytes: int | None = None  # Content-Length of the compressed body
    wire_bytes: float | None = None  # wrk's bytes read / requests, head included
    server_cpu: float | None = None  # cores the server used in the median round
    other_cpu: float | None = None  # cores used by everything but server and wrk
    gil_enabled: bool | None = None
    quiet_rounds: int = 0  # rounds during which other processes left the cores alone
    samples: list[dict[str, float | None]] = field(default_factory=list)  # with "round"
    errors: list[str] = field(default_factory=list)

    @property
    def workers_label(self) -> str:
        return f"{self.workers} (default)" if self.default_workers else str(self.workers)


# Processes and the machine.


def other_benchmarks() -> list[str]:
    """`pid name` of running wrk/node processes that are not our children."""
    mine = os.getpid()
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if name in OTHER_BENCHMARKS and ppid != mine:
            found.append(f"{stat.parent.name} {name}")
    return found


def busy_cores(seconds: float = 2.0) -> float:
    """Cores the whole machine keeps busy over a short sample (nothing of ours runs)."""
    before = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - before) / seconds


def wait_for_quiet(cpu_wait_s: float) -> None:
    """Wait while another benchmark runs (then give up: its numbers and ours would both be
    wrong), and while other work keeps more than OTHER_CPU_WARN cores busy (then go on,
    flagged: on a shared machine that may never end)."""
    deadline = time.monotonic() + QUIET_WAIT_S
    announced = False
    while busy := other_benchmarks():
        if time.monotonic() > deadline:
            sys.exit(f"another benchmark is still running after {QUIET_WAIT_S} s: {busy}")
        if not announced:
            print(f"\n  waiting: another benchmark is running ({', '.join(busy)})", flush=True)
            announced = True
        time.sleep(5)
    deadline = time.monotonic() + cpu_wait_s
    while (cores := busy_cores()) > OTHER_CPU_WARN and time.monotonic() < deadline:
        if not announced:
            print(f"\n  waiting: other processes keep {cores:.2f} cores busy", flush=True)
            announced = True


def machine_busy_s() -> float:
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK  # all but idle and iowait


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, accept_encoding: str | None = None) -> tuple[int, dict, bytes]:
    """A one-shot GET over a raw socket: (status, lower-cased header fields, body)."""
    extra = f"Accept-Encoding: {accept_encoding}\r\n" if accept_encoding else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}Connection: close\r\n\r\n"
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP response: {head[:80]!r}")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(parts[1]), fields, body


# The server.


class RunningServer:
    """compression_app.py on one interpreter with a number of workers, in its own group."""

    def __init__(self, build: str, workers: int | None, log_path: Path) -> None:
        self.port = free_port()
        argv = [str(REPO / f".venv-{build}/bin/python"), str(APP), str(self.port)]
        if workers is not None:
            argv.append(str(workers))
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_ready(self) -> str | None:
        """None once `/gil` answers; otherwise why not."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with status {self.proc.returncode} before answering"
            try:
                status, _, _ = http_get(self.port, "/gil")
                return None if status == 200 else f"GET /gil answered {status}"
            except OSError:
                time.sleep(0.1)
        return f"did not answer within {START_TIMEOUT_S:.0f} s"

    def gil_enabled(self) -> bool | None:
        _, _, body = http_get(self.port, "/gil")
        return {b"True": True, b"False": False}.get(body.strip())

    def stop(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait_s)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


# wrk.

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
UNIT_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_wrk(output: str) -> dict[str, float]:
    """req/s, p99 (ms), requests, bytes read and error counts from wrk --latency."""
    parsed: dict[str, float] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        parsed["rps"] = float(m.group(1))
    if m := re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE):
        parsed["p99_ms"] = float(m.group(1)) * UNIT_MS[m.group(2)]
    if m := re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", output):
        parsed["requests"] = int(m.group(1))
        parsed["bytes_read"] = float(m.group(2)) * UNIT_BYTES[m.group(3)]
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        parsed["socket_errors"] = sum(int(x) for x in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        parsed["non_2xx"] = int(m.group(1))
    return parsed


def wrk_command(wrk: str, port: int, coding: str, connections: int, seconds: int) -> list[str]:
    return [
        *(wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"),
        *("-H", f"Accept-Encoding: {coding}", f"http://{HOST}:{port}/"),
    ]


def measure(
    server: RunningServer, cell: Cell, wrk: str, args: argparse.Namespace, round_no: int
) -> None:
    """One round of one cell: warm up, run wrk, append a sample (or an error) to the cell.
    A run during which other processes were busy is retried, after waiting for quiet, up
    to --retries times; the quietest attempt is kept."""
    status, fields, _ = http_get(server.port, "/", cell.coding)
    if status != 200 or fields.get("content-encoding") != cell.coding:
        cell.errors.append(f"probe: {status}, Content-Encoding {fields.get('content-encoding')}")
        return
    cell.body_bytes = int(fields["content-length"])
    attempts = []
    for attempt in range(args.retries + 1):
        if attempt:
            print(f"(noisy: {attempts[-1]['other_cpu']:.2f} cores, again) ", end="", flush=True)
            wait_for_quiet(args.quiet_wait)
        sample = run_wrk(server, cell, wrk, args.duration)
        if sample is None:
            return
        sample["round"] = round_no
        attempts.append(sample)
        if (sample["other_cpu"] or 0.0) <= OTHER_CPU_WARN:
            break
    cell.samples.append(min(attempts, key=lambda s: s["other_cpu"] or 0.0))


def run_wrk(
    server: RunningServer, cell: Cell, wrk: str, duration: int
) -> dict[str, float | None] | None:
    """Warm up, then one timed wrk run: the sample, or None (and an error on the cell)."""
    args = (wrk, server.port, cell.coding, cell.connections)
    subprocess.run(wrk_command(*args, WARMUP_S), capture_output=True, timeout=WARMUP_S + 30)
    before = (time.monotonic(), machine_busy_s(), process_cpu_s(server.proc.pid), children_cpu_s())
    done = subprocess.run(
        wrk_command(*args, duration), capture_output=True, text=True, timeout=duration + 60
    )
    after = (time.monotonic(), machine_busy_s(), process_cpu_s(server.proc.pid), children_cpu_s())
    elapsed, busy, srv, wrk_cpu = (b - a for a, b in zip(before, after, strict=True))
    parsed = parse_wrk(done.stdout)
    if "rps" not in parsed:
        cell.errors.append(f"could not parse wrk output: {(done.stdout + done.stderr)[-200:]!r}")
        return None
    if parsed.get("socket_errors") or parsed.get("non_2xx"):
        cell.errors.append(
            f"wrk: {parsed.get('socket_errors', 0):.0f} socket errors,"
            f" {parsed.get('non_2xx', 0):.0f} non-2xx"
        )
    return {
        "rps": parsed["rps"],
        "p99_ms": parsed.get("p99_ms"),
        "wire_bytes": parsed["bytes_read"] / parsed["requests"] if parsed.get("requests") else None,
        "server_cpu": srv / elapsed,
        "other_cpu": max(busy - srv - wrk_cpu, 0.0) / elapsed,
    }


def summarize(cell: Cell) -> None:
    """Fill the cell's headline fields from its median round: among the quiet rounds (no
    other process busy) when there are any, else among all."""
    calm = [s for s in cell.samples if quiet(s)]
    chosen = calm or cell.samples
    cell.quiet_rounds = len(calm)
    if not chosen:
        return
    ordered = sorted(chosen, key=lambda s: s["rps"] or 0.0)
    median = ordered[(len(ordered) - 1) // 2]
    cell.rps = statistics.median(s["rps"] or 0.0 for s in chosen)
    cell.p99_ms = median["p99_ms"]
    cell.wire_bytes = median["wire_bytes"]
    cell.server_cpu = median["server_cpu"]
    cell.other_cpu = max(s["other_cpu"] or 0.0 for s in chosen)


def quiet(sample: dict[str, float | None]) -> bool:
    return (sample.get("other_cpu") or 0.0) <= OTHER_CPU_WARN


def scaling(cells: list[Cell]) -> list[dict[str, object]]:
    """Per build and coding: req/s at each worker count ÷ req/s at 1 worker. Each round's
    servers ran back to back, so the ratio is taken within a round (both sides saw the
    same machine) and the median over rounds is reported: over the rounds in which both
    samples were quiet when there are any (`quiet` then lists how many), else over all."""
    rows = []
    for build in BUILDS:
        for coding in dict.fromkeys(c.coding for c in cells):
            group = {c.workers: c for c in cells if c.build == build and c.coding == coding}
            one = group.get(1)
            if one is None:
                continue
            base = {s["round"]: s for s in one.samples if s.get("rps")}
            ratio: dict[str, float] = {}
            quiet_pairs: dict[str, int] = {}
            for workers, cell in sorted(group.items()):
                pairs = [(s, base[s["round"]]) for s in cell.samples if s["round"] in base]
                calm = [(s, b) for s, b in pairs if quiet(s) and quiet(b)]
                chosen = calm or pairs
                if chosen:
                    ratio[str(workers)] = statistics.median(
                        (s["rps"] or 0.0) / (b["rps"] or 1.0) for s, b in chosen
                    )
                    quiet_pairs[str(workers)] = len(calm)
            if ratio:
                rows.append(
                    {
                        "build": build,
                        "interpreter": BUILDS[build],
                        "coding": coding,
                        "rps": {str(w): c.rps for w, c in sorted(group.items())},
                        "ratio": ratio,
                        "quiet_pairs": quiet_pairs,
                        "rounds": len(one.samples),
                    }
                )
    return rows


# Output.


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def markdown(cells: list[Cell], machine: dict[str, object], args: argparse.Namespace) -> str:
    out = [
        "# Compression: req/s of a ~100 KB JSON response by coding and workers (wrk)",
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}",
        f"- mummy: {machine['mummy_revision']}",
        f"- Load average at start: {machine['load_average_at_start']}",
        f"- Body: {machine.get('body_bytes', 0):,} bytes of JSON (bench/compression_levels.py),"
        " compressed per response with mummy's defaults (zstd level 3, gzip level 5)",
        f"- Client: {machine['wrk']}, `wrk -t{WRK_THREADS} -c{args.connections} -d{args.duration}s"
        ' --latency -H "Accept-Encoding: <coding>"` after a 1 s warm-up, on the same machine'
        f" (loopback); {args.rounds} round(s), the median of the quiet ones reported (of all,"
        " when none was quiet: flagged below)",
        "",
        "| interpreter | coding | workers | req/s | quiet rounds | p99"
        " | body bytes (Content-Length) | bytes/response read by wrk | server CPU (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        p99 = "—" if c.p99_ms is None else f"{c.p99_ms:.1f} ms"
        out.append(
            f"| {c.interpreter} | {c.coding} | {c.workers_label} | {fmt(c.rps)}"
            f" | {c.quiet_rounds} of {len(c.samples)} | {p99}"
            f" | {fmt(c.body_bytes)} | {fmt(c.wire_bytes)} | {fmt(c.server_cpu, '.2f')} |"
        )
    rows = scaling(cells)
    if rows:
        counts = sorted({int(w) for r in rows for w in r["ratio"]})
        labels = [f"{w} ÷ 1" + (" (default)" if w == DEFAULT_WORKERS else "") for w in counts[1:]]
        out += [
            "",
            "Scaling with workers: req/s ÷ req/s at 1 worker in the same round, median over"
            " the rounds in which neither run was disturbed (how many in brackets; over all"
            " rounds when none was quiet):",
            "",
            "| interpreter | coding | " + " | ".join(labels) + " |",
            "|---|---|" + "---:|" * len(labels),
        ]
        for r in rows:
            ratio: dict[str, float] = r["ratio"]
            calm: dict[str, int] = r["quiet_pairs"]
            values = [
                f"{ratio[str(w)]:.2f}x ({calm[str(w)]} quiet)" if str(w) in ratio else "—"
                for w in counts[1:]
            ]
            out.append(f"| {r['interpreter']} | {r['coding']} | " + " | ".join(values) + " |")
    trouble = [(c, c.errors) for c in cells if c.errors]
    noisy = [c for c in cells if c.other_cpu is not None and c.other_cpu > OTHER_CPU_WARN]
    if trouble or noisy:
        out += ["", "Problems:", ""]
        out += [
            f"- {c.interpreter} {c.coding} {c.workers_label}: {'; '.join(e)}" for c, e in trouble
        ]
        out += [
            f"- {c.interpreter} {c.coding} {c.workers_label}: no quiet round; other processes"
            f" used up to {c.other_cpu:.2f} cores"
            for c in noisy
        ]
    return "\n".join(out) + "\n"


def machine_info(wrk: str) -> dict[str, object]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.strip()
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "mummy"], capture_output=True, text=True)
    revision = commit.stdout.strip() or "unknown"
    if dirty.stdout.strip():
        revision += " + uncommitted changes in mummy/"
    return {
        "cpu": model,
        "cores": CORES,
        "platform": platform.platform(),
        "mummy_revision": revision,
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "wrk": version.splitlines()[0] if version else "wrk",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per cell and round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument(
        "--retries", type=int, default=1, help="reruns of a sample disturbed by other work (1)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait, before a run, for other processes to leave the cores idle (30)",
    )
    parser.add_argument(
        "--workers",
        default=f"1,2,4,{DEFAULT_WORKERS}",
        help=f"worker counts (default 1,2,4,{DEFAULT_WORKERS}; {DEFAULT_WORKERS} is the"
        " default, which the app gets by not being told)",
    )
    parser.add_argument("--codings", default="zstd,gzip", help="codings (zstd,gzip)")
    parser.add_argument("--builds", default="ft,gil", help="ft, gil or both (ft,gil)")
    parser.add_argument(
        "--name",
        default="compression",
        help="results file names: bench/results/NAME.md and .json (compression)",
    )
    args = parser.parse_args()
    args.worker_counts = [int(w) for w in args.workers.split(",") if w]
    args.coding_list = [c for c in args.codings.split(",") if c]
    args.build_list = [b for b in args.builds.split(",") if b]
    if not set(args.coding_list) <= {"zstd", "gzip", "deflate"}:
        parser.error("--codings takes zstd, gzip and deflate")
    if not set(args.build_list) <= set(BUILDS):
        parser.error("--builds takes ft and gil")
    if not re.fullmatch(r"compression[a-z0-9-]*", args.name):
        parser.error("--name starts with 'compression' and has only a-z, 0-9 and '-'")
    if not (1 <= args.duration <= 120 and 1 <= args.rounds <= 9):
        parser.error("--duration is 1..120 seconds, --rounds 1..9")
    return args


def main() -> None:
    args = parse_args()
    # SIGTERM (as from `kill`) unwinds like Ctrl-C, so the running server is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    wrk = shutil.which("wrk")
    if sys.platform != "linux" or wrk is None:
        sys.exit("bench/compression.py needs Linux and wrk (apt-get install wrk)")
    for build in args.build_list:
        if not (REPO / f".venv-{build}/bin/python").exists():
            sys.exit(f".venv-{build} is missing: run ./ci/test to provision it")
    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    wait_for_quiet(args.quiet_wait)
    machine = machine_info(wrk)
    cells = {
        (b, c, w): Cell(b, BUILDS[b], c, w, w == DEFAULT_WORKERS, args.connections)
        for b in args.build_list
        for w in args.worker_counts
        for c in args.coding_list
    }
    per_round = len(args.build_list) * len(args.worker_counts)
    estimate = args.rounds * (per_round * 2 + len(cells) * (args.duration + WARMUP_S + 1))
    load = machine["load_average_at_start"]
    print(f"{machine['date']}  {machine['cpu']}, {CORES} cores; load average {load}")
    print(f"{len(cells)} cells x {args.rounds} rounds x {args.duration} s", end="")
    print(f", about {estimate / 60:.1f} min", flush=True)
    for round_no in range(1, args.rounds + 1):
        for build in args.build_list:
            for workers in args.worker_counts:
                wait_for_quiet(args.quiet_wait)
                log_path = LOGS / f"compression-{build}-{workers}.log"
                server = RunningServer(
                    build, None if workers == DEFAULT_WORKERS else workers, log_path
                )
                try:
                    problem = server.wait_until_ready()
                    if not problem and "body_bytes" not in machine:
                        _, _, body = http_get(server.port, "/")  # no Accept-Encoding: identity
                        machine["body_bytes"] = len(body)
                    for coding in args.coding_list:
                        cell = cells[(build, coding, workers)]
                        print(
                            f"  round {round_no}  {cell.interpreter:<6} {coding:<5}"
                            f" workers={cell.workers_label:<13}",
                            end="",
                            flush=True,
                        )
                        if problem:
                            cell.errors.append(f"{problem} (log: {log_path.relative_to(REPO)})")
                            print(problem, flush=True)
                            continue
                        cell.gil_enabled = server.gil_enabled()
                        measure(server, cell, wrk, args, round_no)
                        last = cell.samples[-1] if cell.samples else {}
                        print(
                            f"{fmt(last.get('rps')):>8} req/s  {fmt(cell.body_bytes):>7} B"
                            f"  cpu {fmt(last.get('server_cpu'), '.2f')}"
                            f"  other {fmt(last.get('other_cpu'), '.2f')}",
                            flush=True,
                        )
                finally:
                    server.stop()
    for cell in cells.values():
        summarize(cell)
        if cell.build == "ft" and cell.gil_enabled:
            cell.errors.append("the GIL was re-enabled in the 3.13t server")
    ordered = sorted(cells.values(), key=lambda c: (c.build != "ft", c.coding != "zstd", c.workers))
    report = markdown(ordered, machine, args)
    payload = {
        "machine": machine,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "default_workers": DEFAULT_WORKERS,
        "cells": [{**asdict(c), "workers_label": c.workers_label} for c in ordered],
        "scaling": scaling(ordered),
    }
    stamp = re.sub(r"[^0-9T]", "", str(machine["date"]))[:15]
    RUNS.mkdir(parents=True, exist_ok=True)
    for target in (RESULTS / args.name, RUNS / f"{args.name}-{stamp}"):
        target.with_suffix(".md").write_text(report)
        target.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    print()
    print(report)
    print(f"wrote bench/results/{args.name}.md and .json, and runs/{args.name}-{stamp}.*")


if __name__ == "__main__":
    main()
