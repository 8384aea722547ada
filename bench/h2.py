#!/usr/bin/env python3
"""HTTP/2 (h2c) throughput of mummy vs granian and hypercorn, measured with h2load in one run.

    ./bench/h2.py                       # 10 s per cell, 3 to 8 minutes
    ./bench/h2.py --quick               # 3 s per cell
    ./bench/h2.py --duration 20 --paths / --servers granian

Plaintext HTTP/2 with prior knowledge, loopback only, on `/` (hello) and `/sleep` (a 10 ms
sleep, then hello): `h2load -c 10 -m 10 -t 1 -D <secs> --warm-up-time 1`, i.e. 100 streams
in flight over 10 connections. Servers, one at a time: mummy (`examples/bench_app.py`, copied
aside when the run starts) on 3.13t and on the GIL build, with 4 workers on `/` and 100 on
`/sleep`; granian 2.7.9 `--http 2` with the WSGI app (`--blocking-threads` 4, 100 on
`/sleep`) and with the ASGI app; hypercorn (ASGI, asyncio worker) on 3.13t. Peers run the
twin apps in `bench/apps/` from venvs under `bench/.venvs/` (made here from the 3.13t
interpreter when missing: `granian-ft` is shared with bench/http_servers.py, `hypercorn-ft`).

h2load 1.52 prints no percentiles, so p99 comes from its `--log-file` (one line per request
of the timed phase). This machine is shared: before each cell we wait until no other `wrk`,
`h2load` or `node` runs, then up to --settle (10) s for the CPUs to go idle; a cell in which
other processes used more than 0.2 cores (from /proc) is run once more (--retries) and, if
the least disturbed try is still over, flagged, with the busiest of them named.

Writes `bench/results/h2.md` and `h2.json` (and a copy under `bench/results/runs/`); server
logs go to `bench/results/logs/h2-*.log`. This file only orchestrates: any python3 >= 3.11
runs it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
APPS = BENCH / "apps"
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
SNAPSHOT = RESULTS / "h2-snapshot"
RUNS = RESULTS / "runs"

HOST = "127.0.0.1"
CORES = os.cpu_count() or 1
H2LOAD = "/usr/bin/h2load"
CLIENTS = 10  # h2load -c: connections
STREAMS = 10  # h2load -m: concurrent streams per connection
WARMUP_S = 1
SLEEP_S = 0.010  # what /sleep sleeps
SLEEP_LIMIT = CLIENTS * STREAMS / SLEEP_S  # the most /sleep can serve: 10,000 req/s
POOL = {"/": 2 * CORES, "/sleep": CLIENTS * STREAMS}  # mummy workers, granian WSGI threads
PATHS = ("/", "/sleep")
HELLO = "Hello, World!"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PIP_TIMEOUT_S = 900
OTHER_CPU_WARN = 0.2  # cores used by unrelated processes before a cell is flagged
BUSY_COMMANDS = ("wrk", "h2load", "node")  # other load generators we wait out
DEFAULT_MAX_WAIT_S = 900
DEFAULT_SETTLE_S = 10.0

FT_PYTHON_DEFAULT = Path.home() / ".cache/mummy/cpython-3.13.5-ft/bin/python3.13t"

# Targets (issue 9) and the figures its author measured on this machine kind (2 cores).
TARGET_VS_HYPERCORN = 3.0  # mummy-3.13t on `/` over hypercorn
TARGET_SLEEP_SHARE = 0.95  # mummy-3.13t on `/sleep` over SLEEP_LIMIT
ISSUE_FIGURES = {
    ("granian WSGI", "/"): 65_268,
    ("granian WSGI", "/sleep"): 9_254,
    ("granian ASGI", "/"): 61_925,
    ("granian ASGI", "/sleep"): 7_904,
    ("hypercorn", "/"): 3_903,
    ("hypercorn", "/sleep"): 3_475,
}
# Lines in server logs that say nothing about the run.
BENIGN_LOG = (
    re.compile(r"free-threaded Python support is experimental"),  # granian, at start
    re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO mummy: "),  # mummy's INFO lines
)


@dataclass(frozen=True)
class Peer:
    """A peer installed into bench/.venvs/<venv>; reused as found when its probe imports."""

    venv: str
    packages: tuple[str, ...]
    probe: str  # modules that must import
    dists: tuple[str, ...]  # distributions whose versions we report


GRANIAN = Peer("granian-ft", ("granian==2.7.9",), "granian._granian", ("granian",))
HYPERCORN = Peer("hypercorn-ft", ("hypercorn==0.18.0",), "hypercorn, h2", ("hypercorn", "h2"))


@dataclass(frozen=True)
class ServerSpec:
    """One server on one interpreter: how to start it and how to describe its settings."""

    name: str  # row label
    interpreter: str  # "3.13t" or "3.13"
    command: Callable[[int, str], list[str]]  # (port, path) -> argv
    settings: Callable[[str], str]  # path -> the settings column
    group: str  # the --servers name that selects it
    reference: bool = False  # the mummy-3.13t rows the ratios divide by


@dataclass
class Cell:
    """One measurement: a server on a path."""

    server: str
    interpreter: str
    settings: str
    path: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None  # h2load's own "time for request" mean
    requests: int | None = None  # h2load: total
    succeeded: int | None = None
    failed: int | None = None
    errored: int | None = None
    timeout: int | None = None
    non_2xx: int = 0  # responses with a status of 300 or more
    no_status: int = 0  # logged with status 0: headers arrived in the warm-up (h2load quirk)
    logged: int | None = None  # lines in h2load's --log-file (requests of the timed phase)
    protocol: str | None = None  # h2load's "Application protocol"
    gil_enabled: bool | None = None
    server_cpu: float | None = None  # cores the server used during the run
    other_cpu: float | None = None  # cores used by everything but the server and h2load
    busiest_others: list[str] = field(default_factory=list)
    waited_s: float = 0.0  # waiting for other load generators before the cell
    busy_at_start: list[str] = field(default_factory=list)  # still running when we gave up
    busiest_thread_cpu: float | None = None  # cores used by the server's busiest thread
    server_log: list[str] = field(default_factory=list)  # notable output during the run
    shutdown_log: list[str] = field(default_factory=list)  # notable output once stopped
    error: str | None = None
    reference: bool = False
    h2load_output: str = ""
    # Earlier tries of a cell that other processes disturbed: (req/s, p99 ms, other cores).
    discarded: list[tuple[float | None, float | None, float | None]] = field(default_factory=list)

    @property
    def disturbed(self) -> bool:
        return self.other_cpu is not None and self.other_cpu > OTHER_CPU_WARN


# Servers. All bind 127.0.0.1; peers import their app from bench/apps.


def snapshot_mummy() -> Path:
    """Copy mummy/ and the bench app aside so that edits to the tree during the run don't
    change what is measured (the app's directory leads its sys.path). Returns the app."""
    SNAPSHOT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(SNAPSHOT / "mummy", ignore_errors=True)
    shutil.copytree(
        REPO / "mummy", SNAPSHOT / "mummy", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO / "examples/bench_app.py", SNAPSHOT / "bench_app.py")
    return SNAPSHOT / "bench_app.py"


def mummy_spec(interp: str, venv: Path, app: Path) -> ServerSpec:
    def command(port: int, path: str) -> list[str]:
        return [str(venv / "bin/python"), str(app), str(port), str(POOL[path])]

    label = "3.13t" if interp == "ft" else "3.13"
    return ServerSpec(
        "mummy",
        label,
        command,
        lambda path: f"workers={POOL[path]}, h2 (prior knowledge)",
        "mummy",
        reference=interp == "ft",
    )


def granian_spec(venv: Path, interface: str) -> ServerSpec:
    app = "wsgi_app:app" if interface == "wsgi" else "asgi_app:app"

    def threads(path: str) -> list[str]:
        # Granian refuses --blocking-threads > 1 on ASGI: its /sleep awaits instead.
        return ["--blocking-threads", str(POOL[path])] if interface == "wsgi" else []

    def command(port: int, path: str) -> list[str]:
        return [
            str(venv / "bin/granian"),
            *("--interface", interface, "--http", "2", "--host", HOST, "--port", str(port)),
            *("--workers", "1", *threads(path)),
            *("--no-access-log", "--log-level", "warning", "--working-dir", str(APPS)),
            app,
        ]

    def settings(path: str) -> str:
        extra = f", --blocking-threads {POOL[path]}" if interface == "wsgi" else ""
        return f"{interface.upper()}, --http 2, 1 worker{extra}"

    return ServerSpec(f"granian {interface.upper()}", "3.13t", command, settings, "granian")


def hypercorn_spec(venv: Path) -> ServerSpec:
    def command(port: int, path: str) -> list[str]:
        del path
        return [
            str(venv / "bin/hypercorn"),
            *("--config", str(APPS / "hypercorn_h2.toml")),
            *("--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class", "asyncio"),
            *("--log-level", "warning", "asgi_app:app"),
        ]

    return ServerSpec(
        "hypercorn",
        "3.13t",
        command,
        lambda path: "ASGI, asyncio worker, 1 worker, keep_alive_max_requests 1e9",
        "hypercorn",
    )


# Setup: interpreter, file limits, peer venvs.


def find_ft_python() -> Path | None:
    env = os.environ.get("MUMMY_PYTHON_FT")
    path = Path(env) if env else FT_PYTHON_DEFAULT
    return path if path.exists() else None


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def probe_venv(venv: Path, peer: Peer) -> tuple[bool, str]:
    """(imports fine, versions or the error)."""
    code = (
        "import importlib.metadata as m, sys\n"
        f"import {peer.probe}\n"
        f"print(' '.join(d + '==' + m.version(d) for d in {list(peer.dists)!r}),"
        " 'GIL', 'on' if getattr(sys, '_is_gil_enabled', lambda: True)() else 'off')"
    )
    python = venv / "bin/python"
    if not python.exists():
        return False, "no venv"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return False, lines[-1] if lines else f"exit {done.returncode}"
    return True, done.stdout.strip()


def ensure_peer(peer: Peer, python: Path) -> tuple[Path | None, str]:
    """(venv, versions) or (None, why). A venv that imports is reused as it is (granian-ft is
    shared with bench/http_servers.py); one that doesn't is made afresh."""
    venv = VENVS / peer.venv
    ok, info = probe_venv(venv, peer)
    if ok:
        return venv, info
    print(f"installing {' '.join(peer.packages)} into {venv.relative_to(REPO)}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [str(python), "-m", "venv", str(venv)],
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", *peer.packages],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(step[1:])}` timed out after {PIP_TIMEOUT_S} s"
        if done.returncode != 0:
            text = done.stdout + done.stderr
            tail = [ln for ln in text.splitlines() if "WARNING: Location" not in ln][-6:]
            return None, f"`{' '.join(step[1:])}` failed: " + " / ".join(tail)
    ok, info = probe_venv(venv, peer)
    return (venv, info) if ok else (None, "installed, but import failed: " + info)


# CPU accounting, to flag cells that other work on this shared machine disturbed.

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    when: float
    machine_busy: int  # ticks, all CPUs, from /proc/stat
    procs: dict[int, tuple[int, int, str]]  # pid -> (pgrp, utime + stime ticks, name)
    children: float  # seconds used by this script's finished children (h2load)


def read_procs() -> dict[int, tuple[int, int, str]]:
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        if len(fields) < 13:
            continue
        name = head.partition("(")[2]
        procs[int(stat.parent.name)] = (int(fields[2]), int(fields[11]) + int(fields[12]), name)
    return procs


def cpu_snapshot() -> CpuSnapshot:
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and iowait (guest is in user)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(time.monotonic(), busy, read_procs(), usage.ru_utime + usage.ru_stime)


def command_line(pid: int, name: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return name
    words = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return (words or name)[:70]


def cpu_shares(
    before: CpuSnapshot, after: CpuSnapshot, pgid: int
) -> tuple[float, float, list[str]]:
    """(server, other) CPU use over the interval, in cores, and the busiest other processes."""
    elapsed = max(after.when - before.when, 1e-6)

    def server_ticks(snap: CpuSnapshot) -> int:
        return sum(ticks for grp, ticks, _ in snap.procs.values() if grp == pgid)

    server = (server_ticks(after) - server_ticks(before)) / CLK_TCK
    client = after.children - before.children
    busy = (after.machine_busy - before.machine_busy) / CLK_TCK
    other = max(busy - server - client, 0.0) / elapsed
    me = os.getpid()
    deltas = []
    for pid, (grp, ticks, name) in after.procs.items():
        if grp == pgid or pid == me:
            continue
        used = (ticks - before.procs.get(pid, (0, 0, ""))[1]) / CLK_TCK / elapsed
        if used >= 0.05:
            deltas.append((used, f"{command_line(pid, name)} ({used:.2f})"))
    deltas.sort(reverse=True)
    return server / elapsed, other, [text for _, text in deltas[:3]]


def thread_ticks(pgid: int) -> dict[int, int]:
    """utime + stime of every thread of the live processes in a process group."""
    ticks = {}
    for pid, (grp, _, _) in read_procs().items():
        if grp != pgid:
            continue
        for stat in Path(f"/proc/{pid}/task").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return ticks


def busiest_thread(before: dict[int, int], after: dict[int, int], elapsed: float) -> float:
    """Cores used by the thread that used the most over the interval."""
    used = [ticks - before.get(tid, 0) for tid, ticks in after.items()]
    return max(used, default=0) / CLK_TCK / max(elapsed, 1e-6)


def other_load_generators() -> list[str]:
    """Other wrk, h2load or node processes now running (we run none between cells)."""
    found = []
    for pid, (_, _, name) in read_procs().items():
        if name in BUSY_COMMANDS:
            found.append(f"{name} (pid {pid})")
    return found


def machine_busy_cores(seconds: float = 1.0) -> float:
    """Cores the whole machine kept busy over the next `seconds`."""

    def busy() -> int:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(ticks[:8]) - ticks[3] - ticks[4]

    before = busy()
    time.sleep(seconds)
    return (busy() - before) / CLK_TCK / seconds


def wait_until_quiet(max_wait_s: float, settle_s: float) -> tuple[float, list[str]]:
    """Waits for other load generators to finish (up to max_wait_s), then up to settle_s
    more for the machine to go idle. Returns (seconds waited, the load generators still
    running when max_wait_s ran out)."""
    start = time.monotonic()
    told = False
    while busy := other_load_generators():
        waited = time.monotonic() - start
        if waited > max_wait_s:
            print(f"[still busy after {waited:.0f} s: {', '.join(busy)}; running anyway] ", end="")
            return waited, busy
        if not told:
            print(f"[waiting for {', '.join(busy)}] ", end="", flush=True)
            told = True
        time.sleep(2)
    settle_until = time.monotonic() + settle_s
    while time.monotonic() < settle_until and machine_busy_cores() > OTHER_CPU_WARN:
        pass
    return time.monotonic() - start, []


# Running one cell.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# An h2c (prior knowledge) GET of each path on one connection, run with a venv that has h2;
# prints {path: [status, body]}.
H2_PROBE = r"""
import json, socket, sys
import h2.config, h2.connection, h2.events
port, paths = int(sys.argv[1]), sys.argv[2:]
config = h2.config.H2Configuration(client_side=True, header_encoding="latin-1")
conn = h2.connection.H2Connection(config)
conn.initiate_connection()
streams, out = {}, {}
for path in paths:
    sid = conn.get_next_available_stream_id()
    fields = [(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
              (":path", path)]
    conn.send_headers(sid, fields, end_stream=True)
    streams[sid], out[path] = path, [None, ""]
with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
    sock.sendall(conn.data_to_send())
    pending = set(streams)
    while pending:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            sid = getattr(ev, "stream_id", None)
            if isinstance(ev, h2.events.ResponseReceived):
                out[streams[sid]][0] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                out[streams[sid]][1] += ev.data.decode("latin-1")
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                pending.discard(sid)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                pending.clear()
        sock.sendall(conn.data_to_send())
print(json.dumps(out))
"""


def h2_get(python: Path, port: int, *paths: str) -> dict[str, list[object]]:
    done = subprocess.run(
        [str(python), "-c", H2_PROBE, str(port), *paths],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ConnectionError(lines[-1] if lines else f"probe exit {done.returncode}")
    result: dict[str, list[object]] = json.loads(done.stdout)
    return result


def wait_until_ready(
    proc: subprocess.Popen[bytes], port: int, probe_python: Path
) -> tuple[str | None, dict[str, list[object]]]:
    """(None, probe answers) once `/` answers 200 Hello over h2c; otherwise (why not, {})."""
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before answering", {}
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
        except OSError:
            time.sleep(0.1)
            continue
        try:
            answers = h2_get(probe_python, port, "/", "/gil")
        except (ConnectionError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            last = f"h2c GET / failed: {exc}"
            time.sleep(0.3)
            continue
        if answers["/"] == [200, HELLO]:
            return None, answers
        return f"h2c GET / answered {answers['/']!r}", {}
    return f"not ready within {START_TIMEOUT_S:.0f} s ({last})", {}


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    try:  # workers a master left behind (granian) share its group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_h2load(output: str) -> dict[str, object]:
    parsed: dict[str, object] = {}
    if m := re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output):
        parsed["rps"] = float(m.group(1))
    if m := re.search(
        r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed,"
        r" (\d+) errored, (\d+) timeout",
        output,
    ):
        keys = ("requests", "succeeded", "failed", "errored", "timeout")
        parsed.update(zip(keys, map(int, m.groups()), strict=True))
    if m := re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output):
        parsed["non_2xx"] = sum(map(int, m.groups()))
    if m := re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s", output):
        parsed["mean_ms"] = float(m.group(1)) * UNIT_MS[m.group(2)]
    if m := re.search(r"Application protocol: (\S+)", output):
        parsed["protocol"] = m.group(1)
    return parsed


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def read_request_log(path: Path) -> tuple[int, int, int, dict[str, float]]:
    """(requests, status >= 300, status 0, {p50_ms, p99_ms, max_ms}) from h2load's
    --log-file: start (us since the epoch), status, microseconds until the end of the
    response; a line per request of the timed phase. A request whose headers came back
    during the warm-up is logged with status 0."""
    times: list[int] = []
    non_2xx = no_status = 0
    with path.open() as log:
        for line in log:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            times.append(int(parts[2]))
            status = int(parts[1])
            non_2xx += status >= 300
            no_status += status == 0
    if not times:
        return 0, 0, 0, {}
    times.sort()
    stats = {
        "p50_ms": percentile(times, 0.50) / 1e3,
        "p99_ms": percentile(times, 0.99) / 1e3,
        "max_ms": times[-1] / 1e3,
    }
    return len(times), non_2xx, no_status, stats


def h2load_command(port: int, path: str, seconds: int, log_file: Path) -> list[str]:
    return [
        H2LOAD,
        *(f"-c{CLIENTS}", f"-m{STREAMS}", "-t1", f"-D{seconds}", f"--warm-up-time={WARMUP_S}"),
        f"--log-file={log_file}",
        f"http://{HOST}:{port}{path}",
    ]


def notable_log_lines(text: str) -> list[str]:
    """Server output that may matter: all but blank, start-up and INFO lines."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    return [ln for ln in lines if not any(p.search(ln) for p in BENIGN_LOG)]


def gil_state(spec: ServerSpec, answers: dict[str, list[object]], app: Path) -> bool | None:
    """Is the GIL on in the serving process? Peers' apps answer /gil; mummy's app does not,
    so for mummy on 3.13t we import what it imports in its venv and ask there."""
    if spec.interpreter == "3.13":
        return True
    status, body = answers.get("/gil", [None, ""])
    if status == 200:
        return body == "True"
    if spec.group != "mummy":
        return None
    code = (
        f"import sys\nsys.path.insert(0, {str(app.parent)!r})\n"
        "import mummy, mummy.core.h2session, h2\nprint(sys._is_gil_enabled())"
    )
    done = subprocess.run(
        [str(REPO / ".venv-ft/bin/python"), "-c", code], capture_output=True, text=True
    )
    return {"True": True, "False": False}.get(done.stdout.strip())


def measure(
    cell: Cell, proc: subprocess.Popen[bytes], port: int, duration: int, request_log: Path
) -> None:
    """Runs h2load against the ready server and fills in the cell."""
    threads_before = thread_ticks(proc.pid)
    before = cpu_snapshot()
    done = subprocess.run(
        h2load_command(port, cell.path, duration, request_log),
        capture_output=True,
        text=True,
        timeout=duration + WARMUP_S + 60,
    )
    after = cpu_snapshot()
    cell.server_cpu, cell.other_cpu, cell.busiest_others = cpu_shares(before, after, proc.pid)
    cell.busiest_thread_cpu = busiest_thread(
        threads_before, thread_ticks(proc.pid), after.when - before.when
    )
    cell.h2load_output = done.stdout + done.stderr
    for key, value in parse_h2load(cell.h2load_output).items():
        setattr(cell, key, value)
    if request_log.exists():
        cell.logged, logged_non_2xx, cell.no_status, stats = read_request_log(request_log)
        for key, value in stats.items():
            setattr(cell, key, value)
        cell.non_2xx = max(cell.non_2xx, logged_non_2xx)
    if proc.poll() is not None:
        cell.error = f"server exited (status {proc.returncode}) during the run"
    elif cell.rps is None:
        cell.error = f"could not parse h2load output (exit {done.returncode})"
    elif done.returncode != 0:
        cell.error = f"h2load exited with status {done.returncode}"


def run_cell(
    spec: ServerSpec,
    path: str,
    duration: int,
    probe_python: Path,
    app: Path,
    waits: tuple[float, float],  # (--max-wait, --settle)
) -> Cell:
    cell = Cell(
        server=spec.name,
        interpreter=spec.interpreter,
        settings=spec.settings(path),
        path=path,
        reference=spec.reference,
    )
    cell.waited_s, cell.busy_at_start = wait_until_quiet(*waits)
    port = free_port()
    where = path.strip("/") or "root"
    slug = re.sub(r"[^a-z0-9.]+", "-", f"h2-{spec.name}-{spec.interpreter}-{where}".lower())
    log_path = LOGS / f"{slug}.log"
    run_log_end = 0  # bytes of server output by the time h2load finished
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(APPS)}
    env.pop("VIRTUAL_ENV", None)
    with log_path.open("wb") as log, tempfile.TemporaryDirectory(prefix="h2bench-") as tmp:
        proc = subprocess.Popen(
            spec.command(port, path),
            cwd=APPS,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            problem, answers = wait_until_ready(proc, port, probe_python)
            if problem:
                cell.error = f"{problem} (log: {log_path.relative_to(REPO)})"
            else:
                cell.gil_enabled = gil_state(spec, answers, app)
                measure(cell, proc, port, duration, Path(tmp) / "requests.tsv")
                run_log_end = log_path.stat().st_size
        except subprocess.TimeoutExpired as exc:
            cell.error = f"h2load timed out: {exc}"
        finally:
            stop(proc)
    output = log_path.read_bytes()
    if not run_log_end:  # never got to the timed run: all of it counts
        run_log_end = len(output)
    cell.server_log = notable_log_lines(output[:run_log_end].decode(errors="replace"))
    cell.shutdown_log = notable_log_lines(output[run_log_end:].decode(errors="replace"))
    return cell


# Building the run.


def build_specs(
    args: argparse.Namespace, python: Path | None
) -> tuple[list[ServerSpec], dict[str, str], dict[str, str], Path]:
    """The servers to run, setup failures, versions, and the mummy app they run."""
    wanted = set(args.servers.split(",")) if args.servers else None
    specs: list[ServerSpec] = []
    failures: dict[str, str] = {}
    versions: dict[str, str] = {}
    app = REPO / "examples/bench_app.py" if args.live else snapshot_mummy()
    for interp in ("ft", "gil"):
        venv = REPO / f".venv-{interp}"
        if not (venv / "bin/python").exists():
            failures[f"mummy-{interp}"] = f"{venv.name} missing: run ./ci/test to provision it"
            continue
        if interp == "gil" and args.no_gil:
            continue
        specs.append(mummy_spec(interp, venv, app))
    for peer, make in (
        (GRANIAN, lambda v: [granian_spec(v, "wsgi"), granian_spec(v, "asgi")]),
        (HYPERCORN, lambda v: [hypercorn_spec(v)]),
    ):
        name = peer.venv.split("-")[0]
        if wanted is not None and name not in wanted:
            continue
        if python is None:
            failures[peer.venv] = "no 3.13t interpreter (set MUMMY_PYTHON_FT)"
            continue
        venv, info = ensure_peer(peer, python)
        if venv is None:
            failures[peer.venv] = info
            print(f"  {peer.venv}: {info}", flush=True)
            continue
        versions[peer.venv] = info
        specs.extend(make(venv))
    return specs, failures, versions, app


def machine_info(live: bool) -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    h2load = subprocess.run([H2LOAD, "--version"], capture_output=True, text=True).stdout
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "mummy", "examples"], capture_output=True, text=True
    )
    revision = commit.stdout.strip() or "unknown"
    if dirty.stdout.strip():
        revision += " + uncommitted changes in mummy/ or examples/"
    revision += " (working tree, live)" if live else " (copied when the run started)"
    h2_version = subprocess.run(
        [str(REPO / ".venv-ft/bin/python"), "-c", "import h2; print(h2.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": CORES,
        "mummy_revision": revision,
        "mummy_h2": h2_version or "unknown",
        "platform": platform.platform(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "h2load": h2load.strip() or "h2load",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# Output.


def fmt_rps(rps: float | None) -> str:
    return "—" if rps is None else f"{rps:,.0f}"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def fmt_cores(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def ratio(num: float | None, den: float | None) -> float | None:
    return None if not num or not den else num / den


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def interpreter_column(cell: Cell) -> str:
    if cell.interpreter == "3.13t" and cell.gil_enabled:
        return "3.13t (GIL re-enabled!)"
    return cell.interpreter


def problems(cell: Cell) -> str:
    notes = []
    if cell.error:
        notes.append(cell.error)
    if cell.protocol and cell.protocol != "h2c":
        notes.append(f"h2load spoke {cell.protocol}, not h2c")
    for key in ("failed", "errored", "timeout"):
        if getattr(cell, key):
            notes.append(f"{getattr(cell, key)} {key}")
    if cell.non_2xx:
        notes.append(f"{cell.non_2xx} responses with status >= 300")
    if cell.busy_at_start:
        notes.append(f"started while {', '.join(cell.busy_at_start)} ran")
    if cell.disturbed:
        note = f"other processes used {cell.other_cpu:.2f} cores during the run"
        if cell.busiest_others:
            note += " (" + "; ".join(cell.busiest_others) + ")"
        else:
            note += " (short-lived processes)"
        notes.append(note)
    for rps, p99, other in cell.discarded:
        notes.append(
            f"an earlier try, disturbed ({fmt_cores(other)} other cores), gave {fmt_rps(rps)}"
            f" req/s, p99 {fmt_ms(p99)}"
        )
    for lines, when in ((cell.server_log, "during the run"), (cell.shutdown_log, "once stopped")):
        if lines:
            first = lines[0][:120]
            notes.append(f"server output {when}: {len(lines)} lines, first: `{first}`")
    return "; ".join(notes)


def find(cells: list[Cell], server: str, path: str, interpreter: str = "3.13t") -> Cell | None:
    for cell in cells:
        if (cell.server, cell.path, cell.interpreter) == (server, path, interpreter):
            return cell
    return None


@dataclass
class Target:
    """A line of the targets table: what is compared, the figure, and whether it is met."""

    what: str
    measured: str
    met: bool | None = None  # None: reported, not a target


def targets(cells: list[Cell]) -> list[Target]:
    """The issue's targets and the ratios to granian, for mummy on 3.13t."""
    mummy = {path: find(cells, "mummy", path) for path in PATHS}
    rps = {path: cell.rps if cell else None for path, cell in mummy.items()}
    hyper = find(cells, "hypercorn", "/")
    value = ratio(rps["/"], hyper.rps if hyper else None)
    rows = [
        Target(
            f"mummy-3.13t `/` ÷ hypercorn `/` ≥ {TARGET_VS_HYPERCORN:.0f}x",
            fmt_ratio(value),
            None if value is None else value >= TARGET_VS_HYPERCORN,
        )
    ]
    share = ratio(rps["/sleep"], SLEEP_LIMIT)
    rows.append(
        Target(
            f"mummy-3.13t `/sleep` ≥ {TARGET_SLEEP_SHARE:.0%} of {SLEEP_LIMIT:,.0f} req/s"
            f" ({CLIENTS * STREAMS} streams / {SLEEP_S * 1e3:.0f} ms)",
            "—" if share is None else f"{fmt_rps(rps['/sleep'])} req/s = {share:.1%}",
            None if share is None else share >= TARGET_SLEEP_SHARE,
        )
    )
    for peer in ("granian WSGI", "granian ASGI"):
        for path in PATHS:
            other = find(cells, peer, path)
            value = ratio(rps[path], other.rps if other else None)
            rows.append(Target(f"mummy-3.13t `{path}` ÷ {peer} `{path}`", fmt_ratio(value)))
    return rows


def markdown(
    cells: list[Cell],
    machine: dict[str, object],
    failures: dict[str, str],
    versions: dict[str, str],
    duration: int,
    target_rows: list[Target],
    retries: int,
    settle: float,
) -> str:
    command = (
        f"h2load -c {CLIENTS} -m {STREAMS} -t 1 -D {duration} --warm-up-time {WARMUP_S}"
        " --log-file <tmp> http://127.0.0.1:<port><path>"
    )
    out = [
        "# mummy vs peers: HTTP/2 (h2c, prior knowledge) req/s (h2load)",
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}",
        f"- mummy: {machine['mummy_revision']}, h2 {machine['mummy_h2']}",
        f"- Load average at start: {machine['load_average_at_start']}",
        f"- Client: {machine['h2load']}, `{command}`: {CLIENTS * STREAMS} streams in flight"
        f" over {CLIENTS} connections, on the same machine as the server (loopback)",
        "",
        "| server | interpreter | settings | path | req/s | p50 | p99 | max | server CPU"
        " | busiest thread | mummy-3.13t ÷ row | issue's figure |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path in PATHS:
        ref = find(cells, "mummy", path)
        for cell in (c for c in cells if c.path == path):
            figure = ISSUE_FIGURES.get((cell.server, cell.path))
            out.append(
                f"| {cell.server} | {interpreter_column(cell)} | {cell.settings} | {cell.path}"
                f" | {fmt_rps(cell.rps)} | {fmt_ms(cell.p50_ms)} | {fmt_ms(cell.p99_ms)}"
                f" | {fmt_ms(cell.max_ms)} | {fmt_cores(cell.server_cpu)}"
                f" | {fmt_cores(cell.busiest_thread_cpu)}"
                f" | {fmt_ratio(ratio(ref.rps if ref else None, cell.rps))}"
                f" | {fmt_rps(figure) if figure else ''} |"
            )
    out += ["", "Targets (issue 9) and ratios:", "", "| | measured | |", "|---|---:|---|"]
    for row in target_rows:
        verdict = "" if row.met is None else "met" if row.met else "**not met**"
        out.append(f"| {row.what} | {row.measured} | {verdict} |")
    out += [
        "",
        "Notes:",
        "",
        "- req/s: h2load's figure for the timed phase (after the warm-up). p50/p99/max: over"
        " every request of the timed phase, from h2load's `--log-file` (h2load 1.52 prints"
        " only min/max/mean/sd), request sent to response complete.",
        f"- `/sleep` can serve at most {SLEEP_LIMIT:,.0f} req/s: {CLIENTS * STREAMS} streams"
        f" each waiting {SLEEP_S * 1e3:.0f} ms. mummy and granian WSGI block a pool thread in"
        " `time.sleep(0.01)` (pool of 100); granian ASGI and hypercorn `await"
        " asyncio.sleep(0.01)` (granian refuses `--blocking-threads` > 1 on ASGI).",
        f"- On `/`, mummy's workers and granian WSGI's blocking threads are {POOL['/']}"
        " (2 x cores). Every server is one process (granian: 1 worker).",
        "- Server CPU: cores the server's processes used during the run, warm-up included"
        f" (from /proc). h2load shares the same {CORES} cores. Busiest thread: the cores its"
        " busiest thread used (1.00: that thread never waited), e.g. mummy's IO thread, which"
        " runs the h2 state machine for every connection.",
        "- h2load logs a request whose response headers came during the warm-up with status"
        " 0 (`no_status` in the JSON); those are not counted as errors.",
        "- hypercorn reads `bench/apps/hypercorn_h2.toml`: `keep_alive_max_requests` raised from"
        " its default of 1,000, after which it sends GOAWAY and h2load counts the streams in"
        " flight as failed.",
        "- issue's figure: what the issue's author measured for the peers on this machine kind;"
        " compare with this run's peers to see how loaded the machine was.",
        f"- A cell is flagged below when processes other than the server and h2load used more"
        f" than {OTHER_CPU_WARN} cores during it (it is then run again, up to {retries} more"
        " times, and the least disturbed try is kept); before each try the run waits until"
        f" no other {', '.join(BUSY_COMMANDS)} process runs, then up to {settle:.0f} s for the"
        " machine to go idle.",
    ]
    trouble = [(c, problems(c)) for c in cells if problems(c)]
    if trouble:
        out += ["", "Problems:", ""]
        out += [f"- {c.server} ({c.interpreter}) {c.path}: {why}" for c, why in trouble]
    if versions:
        out += ["", "Versions:", ""]
        out += [f"- {key}: {info}" for key, info in sorted(versions.items())]
    if failures:
        out += ["", "Not run (install or setup failed):", ""]
        out += [f"- {key}: {why}" for key, why in sorted(failures.items())]
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per cell")
    parser.add_argument(
        "--servers",
        help="comma-separated peers to include: granian, hypercorn (default: both; `mummy`:"
        " mummy alone); mummy always runs",
    )
    parser.add_argument("--paths", help="comma-separated paths to run (default: /,/sleep)")
    parser.add_argument("--no-gil", action="store_true", help="skip mummy on the GIL build")
    parser.add_argument(
        "--live",
        action="store_true",
        help="run mummy from the working tree, not from a copy taken when the run starts",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=DEFAULT_MAX_WAIT_S,
        help="seconds to wait for other wrk/h2load/node before a cell, then run it flagged"
        f" ({DEFAULT_MAX_WAIT_S})",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=DEFAULT_SETTLE_S,
        help="then up to this many seconds for the machine to go idle (other processes under"
        f" {OTHER_CPU_WARN} cores) before a cell ({DEFAULT_SETTLE_S:.0f})",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="run a cell again, up to this many times, while other processes disturb it;"
        " the least disturbed try is kept (1)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 3
    if args.servers and not set(args.servers.split(",")) <= {"granian", "hypercorn", "mummy"}:
        parser.error("--servers takes names from granian, hypercorn, mummy")
    if args.paths and not set(args.paths.split(",")) <= set(PATHS):
        parser.error("--paths takes / and /sleep")
    if not 0 <= args.retries <= 3:
        parser.error("--retries must be between 0 and 3")
    if not 1 <= args.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    return args


def main() -> None:
    args = parse_args()
    if sys.platform != "linux":
        sys.exit("bench/h2.py needs Linux (h2load, /proc, process groups)")
    if not Path(H2LOAD).exists():
        sys.exit(f"{H2LOAD} missing: apt-get install nghttp2-client")
    probe_python = next(
        (
            p
            for p in (REPO / ".venv-ft/bin/python", REPO / ".venv-gil/bin/python")
            if subprocess.run([str(p), "-c", "import h2"], capture_output=True).returncode == 0
        ),
        None,
    )
    if probe_python is None:
        sys.exit("neither .venv-ft nor .venv-gil has h2: run ./ci/test to provision them")
    nofile = raise_nofile()
    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("h2-*.log"):  # only this run's logs (others' stay)
        old.unlink()
    VENVS.mkdir(parents=True, exist_ok=True)

    specs, failures, versions, app = build_specs(args, find_ft_python())
    paths = [p for p in PATHS if not args.paths or p in args.paths.split(",")]
    machine = machine_info(args.live)
    plan = [(spec, path) for path in paths for spec in specs]
    estimate = len(plan) * (args.duration + WARMUP_S + 4)  # disturbed cells run again
    print(f"{machine['date']}  {machine['cpu']}, {CORES} cores")
    print(f"load average {machine['load_average_at_start']}; {machine['h2load']}")
    print(
        f"nofile {nofile}; {len(plan)} cells x {args.duration} s, about {estimate / 60:.1f} min"
        " (more when cells are disturbed and run again, or wait for other load generators)",
        flush=True,
    )

    cells: list[Cell] = []
    for spec, path in plan:
        print(f"  {spec.name:<13} {spec.interpreter:<6} {path:<7} ", end="", flush=True)
        waits = (args.max_wait, args.settle)
        cell = run_cell(spec, path, args.duration, probe_python, app, waits)
        for _ in range(args.retries):
            if not cell.disturbed or cell.error:
                break
            print(f"[disturbed ({cell.other_cpu:.2f} cores), again] ", end="", flush=True)
            again = run_cell(spec, path, args.duration, probe_python, app, waits)
            if again.error or (again.other_cpu or 0.0) >= (cell.other_cpu or 0.0):
                kept, dropped = cell, again
            else:
                kept, dropped = again, cell
            kept.discarded += [*dropped.discarded, (dropped.rps, dropped.p99_ms, dropped.other_cpu)]
            cell = kept
        cells.append(cell)
        print(
            f"{fmt_rps(cell.rps):>8} req/s  p99 {fmt_ms(cell.p99_ms):>9}"
            f"  cpu {fmt_cores(cell.server_cpu):>4}  {problems(cell)}",
            flush=True,
        )

    target_rows = targets(cells)
    report = markdown(
        cells, machine, failures, versions, args.duration, target_rows, args.retries, args.settle
    )
    payload = {
        "machine": machine,
        "duration_s": args.duration,
        "retries": args.retries,
        "settle_s": args.settle,
        "clients": CLIENTS,
        "streams_per_client": STREAMS,
        "sleep_limit_rps": SLEEP_LIMIT,
        "pool": POOL,
        "targets": [asdict(t) for t in target_rows],
        "issue_figures": [
            {"server": s, "path": p, "rps": v} for (s, p), v in ISSUE_FIGURES.items()
        ],
        "cells": [asdict(c) for c in cells],
        "install_failures": failures,
        "versions": versions,
    }
    stamp = re.sub(r"[^0-9T]", "", str(machine["date"]))[:15]
    RUNS.mkdir(parents=True, exist_ok=True)
    for target in (RESULTS / "h2", RUNS / f"h2-{stamp}"):
        target.with_suffix(".md").write_text(report)
        target.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    print()
    print(report)
    print(f"wrote bench/results/h2.md, h2.json and runs/h2-{stamp}.*", flush=True)


if __name__ == "__main__":
    main()
