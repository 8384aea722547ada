#!/usr/bin/env python3
"""HTTP throughput of mummy vs its peers, side by side, measured with wrk in one run.

    ./bench/http_servers.py                  # 10 s per cell
    ./bench/http_servers.py --quick          # 3 s per cell
    ./bench/http_servers.py --duration 20 --sweep 2,8,20 --servers mummy,granian

Runs `examples/bench_app.py` on mummy (3.13t, and the GIL build for comparison) and twin apps
(`bench/apps/`) on granian (WSGI), uvicorn (+httptools, ASGI), gunicorn (gthread) and
waitress, each peer in its own venv under `bench/.venvs/<name>-<ft|gil>` made here from the
3.13t (and 3.13) interpreter. One server at a time: start it, wait until it answers, warm
up 1 s, run `wrk -t2 -c<conns> -d<secs>s --latency`, stop it (SIGTERM, then SIGKILL).
Loopback only. Writes `bench/results/http.md` and `http.json`; server logs go to
`bench/results/logs/`. Installs wrk with apt-get when it is missing. This file is only an
orchestrator: it runs on any python3 >= 3.11.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
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
SNAPSHOT = RESULTS / "mummy-snapshot"
RUNS = RESULTS / "runs"

HOST = "127.0.0.1"
CORES = os.cpu_count() or 1
DEFAULT_POOL = 2 * CORES  # thread pools on `/` and `/cpu`: 2 x cores
SLEEP_POOL = 100  # thread pools on `/sleep`: one thread per connection
WRK_THREADS = 2
WARMUP_S = 1
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PIP_TIMEOUT_S = 900
OTHER_CPU_WARN = 0.2  # cores used by unrelated processes before a cell is flagged

INTERPRETER_LABEL = {"ft": "3.13t", "gil": "3.13"}
DEFAULT_INTERPRETER = {
    "ft": Path.home() / ".cache/mummy/cpython-3.13.5-ft/bin/python3.13t",
    "gil": Path.home() / ".cache/mummy/cpython-3.13.5-gil/bin/python3.13",
}
INTERPRETER_ENV = {"ft": "MUMMY_PYTHON_FT", "gil": "MUMMY_PYTHON_GIL"}


@dataclass(frozen=True)
class Load:
    """One benchmarked path and how hard wrk pushes it."""

    path: str
    connections: int


LOADS = (Load("/", 64), Load("/sleep", 100), Load("/cpu", 64))


@dataclass(frozen=True)
class Peer:
    """A peer server installed into its own venv."""

    name: str
    packages: tuple[str, ...]
    probe: str  # modules to import when checking that the install works


PEERS = (
    Peer("granian", ("granian==2.7.9",), "granian._granian"),
    Peer("uvicorn", ("uvicorn", "httptools"), "uvicorn, httptools"),
    Peer("gunicorn", ("gunicorn",), "gunicorn.workers.gthread"),
    Peer("waitress", ("waitress",), "waitress"),
)


@dataclass(frozen=True)
class ServerSpec:
    """One server on one interpreter: how to start it and how to describe its settings."""

    name: str  # row label
    interp: str  # "ft" or "gil"
    venv: Path
    command: Callable[[Path, int, int], list[str]]  # (venv, port, pool) -> argv
    settings: Callable[[int], str]  # pool -> the settings column
    pool: int = DEFAULT_POOL  # worker threads on `/` and `/cpu` (`/sleep` gets SLEEP_POOL)
    paths: tuple[str, ...] = ()  # only these paths; () means all
    reference: bool = False  # the mummy-3.13t rows the ratios divide by

    @property
    def label(self) -> str:
        return INTERPRETER_LABEL[self.interp]

    def pool_for(self, path: str) -> int:
        return SLEEP_POOL if path == "/sleep" else self.pool


@dataclass
class Cell:
    """One measurement: a server on a path."""

    server: str
    interpreter: str
    settings: str
    path: str
    connections: int
    rps: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0
    gil_enabled: bool | None = None
    server_cpu: float | None = None  # cores the server used during the run
    other_cpu: float | None = None  # cores used by everything but the server and wrk
    error: str | None = None
    reference: bool = False
    wrk_output: str = ""


# Commands for each server. All bind 127.0.0.1; peers import their app from bench/apps.


def mummy_command(venv: Path, port: int, pool: int, *, app: Path) -> list[str]:
    return [str(venv / "bin/python"), str(app), str(port), str(pool)]


def snapshot_mummy() -> Path:
    """Copy mummy/ and the bench app aside, so that edits made to the tree during the run
    don't change what is measured: the app's directory comes first on its `sys.path`, ahead
    of the editable install. Returns the app to run."""
    SNAPSHOT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(SNAPSHOT / "mummy", ignore_errors=True)
    shutil.copytree(
        REPO / "mummy", SNAPSHOT / "mummy", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO / "examples/bench_app.py", SNAPSHOT / "bench_app.py")
    return SNAPSHOT / "bench_app.py"


def granian_command(venv: Path, port: int, pool: int) -> list[str]:
    return [
        str(venv / "bin/granian"),
        *("--interface", "wsgi", "--host", HOST, "--port", str(port)),
        *("--workers", "1", "--blocking-threads", str(pool)),
        *("--no-access-log", "--log-level", "warning", "--working-dir", str(APPS)),
        "wsgi_app:app",
    ]


def uvicorn_command(venv: Path, port: int, pool: int) -> list[str]:
    del pool  # async: no thread pool involved
    return [
        str(venv / "bin/uvicorn"),
        *("--host", HOST, "--port", str(port), "--app-dir", str(APPS)),
        *("--http", "httptools", "--loop", "asyncio", "--workers", "1"),
        *("--no-access-log", "--log-level", "warning"),
        "asgi_app:app",
    ]


def gunicorn_command(venv: Path, port: int, pool: int, processes: int = 1) -> list[str]:
    return [
        str(venv / "bin/gunicorn"),
        *("--bind", f"{HOST}:{port}", "--chdir", str(APPS)),
        *("--worker-class", "gthread", "--workers", str(processes), "--threads", str(pool)),
        *("--log-level", "warning"),
        "wsgi_app:app",
    ]


def gunicorn2_command(venv: Path, port: int, pool: int) -> list[str]:
    return gunicorn_command(venv, port, max(1, pool // 2), processes=2)


def waitress_command(venv: Path, port: int, pool: int) -> list[str]:
    return [
        str(venv / "bin/waitress-serve"),
        *(f"--listen={HOST}:{port}", f"--threads={pool}", "--connection-limit=1000"),
        "wsgi_app:app",
    ]


PEER_COMMANDS: dict[str, tuple[Callable[[Path, int, int], list[str]], Callable[[int], str]]] = {
    "granian": (granian_command, lambda n: f"WSGI, 1 worker, --blocking-threads {n}"),
    "uvicorn": (uvicorn_command, lambda n: "ASGI, httptools, asyncio loop, 1 worker"),
    "gunicorn": (gunicorn_command, lambda n: f"gthread, 1 process, --threads {n}"),
    "waitress": (waitress_command, lambda n: f"threads={n}"),
}


def mummy_settings(n: int) -> str:
    return f"workers={n}"


# Setup: interpreters, wrk, file limits, peer venvs.


def find_interpreter(interp: str) -> Path | None:
    env = os.environ.get(INTERPRETER_ENV[interp])
    path = Path(env) if env else DEFAULT_INTERPRETER[interp]
    return path if path.exists() else None


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        timeout=600,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        sys.exit("apt-get installed wrk, yet it is not on PATH")
    return found


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def quiet_pip_output(text: str) -> str:
    """pip output without this machine's 'WARNING: Location ... is ignored' noise."""
    lines = [ln for ln in text.splitlines() if not re.search(r"WARNING: Location .* ignored", ln)]
    return "\n".join(lines)


def ensure_peer_venv(peer: Peer, interp: str, python: Path) -> tuple[Path | None, str]:
    """Returns (venv, versions) or (None, why it failed). Reuses a venv installed earlier."""
    venv = VENVS / f"{peer.name}-{interp}"
    marker = venv / ".bench-installed"
    wanted = " ".join(peer.packages)
    if not (marker.exists() and marker.read_text() == wanted):
        print(f"installing {wanted} into {venv.relative_to(REPO)}", flush=True)
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
                tail = quiet_pip_output(done.stdout + done.stderr).strip().splitlines()[-6:]
                return None, f"`{' '.join(step[1:])}` failed: " + " / ".join(tail)
        marker.write_text(wanted)
    dists = [re.split(r"[=<>\[]", p)[0] for p in peer.packages]
    probe = (
        "import importlib.metadata as m, sys\n"
        f"import {peer.probe}\n"
        f"print(' '.join(d + '==' + m.version(d) for d in {dists!r}))"
    )
    done = subprocess.run(
        [str(venv / "bin/python"), "-c", probe], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return None, "installed, but import failed: " + done.stderr.strip().splitlines()[-1]
    return venv, done.stdout.strip()


def import_gil_state(venv: Path, modules: str, path: Path) -> bool | None:
    """Whether importing `modules` (from `path` first) in that venv leaves the GIL on."""
    code = (
        f"import sys\nsys.path.insert(0, {str(path)!r})\nimport {modules}\n"
        "print(getattr(sys, '_is_gil_enabled', lambda: True)())"
    )
    done = subprocess.run(
        [str(venv / "bin/python"), "-c", code], capture_output=True, text=True, timeout=120
    )
    return {"True": True, "False": False}.get(done.stdout.strip())


# Running one cell.


# CPU accounting, to flag cells that other work on this shared machine disturbed.

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    when: float
    machine_busy: int  # ticks, all CPUs, from /proc/stat
    server: int  # ticks used by the server's process group
    children: float  # seconds used by this script's finished children (wrk)


def group_ticks(pgid: int) -> int:
    """utime + stime of the live processes in a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state; pgrp is two on
            total += int(fields[11]) + int(fields[12])
    return total


def cpu_snapshot(pgid: int) -> CpuSnapshot:
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and iowait (guest is in user)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(time.monotonic(), busy, group_ticks(pgid), usage.ru_utime + usage.ru_stime)


def cpu_shares(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float, float]:
    """(server, other) CPU use over the interval, in cores."""
    elapsed = max(after.when - before.when, 1e-6)
    server = (after.server - before.server) / CLK_TCK
    wrk = after.children - before.children
    busy = (after.machine_busy - before.machine_busy) / CLK_TCK
    return server / elapsed, max(busy - server - wrk, 0.0) / elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A one-shot GET over a raw socket (this file's name shadows the stdlib `http`)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise ConnectionError(f"not an HTTP response: {head[:80]!r}")
    return int(status_line[1]), body


def wait_until_ready(proc: subprocess.Popen[bytes], port: int) -> str | None:
    """None once `/` answers 200; otherwise why not."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before answering"
        try:
            status, _ = http_get(port, "/", timeout=1.0)
            if status == 200:
                return None
            return f"GET / answered {status}"
        except OSError:
            time.sleep(0.1)
    return f"did not answer within {START_TIMEOUT_S:.0f} s"


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
    try:  # workers a master left behind (gunicorn, granian) share its group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(output: str) -> dict[str, object]:
    """Requests/sec, p99 (ms), total requests, socket errors and non-2xx/3xx from wrk."""
    parsed: dict[str, object] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        parsed["rps"] = float(m.group(1))
    if m := re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE):
        parsed["p99_ms"] = float(m.group(1)) * UNIT_MS[m.group(2)]
    if m := re.search(r"(\d+) requests in", output):
        parsed["requests"] = int(m.group(1))
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        names = ("connect", "read", "write", "timeout")
        parsed["socket_errors"] = {k: int(v) for k, v in zip(names, m.groups(), strict=True)}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        parsed["non_2xx"] = int(m.group(1))
    return parsed


def wrk_command(wrk: str, port: int, load: Load, seconds: int) -> list[str]:
    url = f"http://{HOST}:{port}{load.path}"
    return [wrk, f"-t{WRK_THREADS}", f"-c{load.connections}", f"-d{seconds}s", "--latency", url]


def run_cell(spec: ServerSpec, load: Load, wrk: str, duration: int) -> Cell:
    pool = spec.pool_for(load.path)
    cell = Cell(
        server=spec.name,
        interpreter=spec.label,
        settings=spec.settings(pool),
        path=load.path,
        connections=load.connections,
        reference=spec.reference,
    )
    port = free_port()
    slug = re.sub(r"[^a-z0-9]+", "-", f"{spec.name}-{spec.interp}-{pool}-{load.path}").strip("-")
    log_path = LOGS / f"{slug}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(APPS)}
    env.pop("VIRTUAL_ENV", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            spec.command(spec.venv, port, pool),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            problem = wait_until_ready(proc, port)
            if problem:
                cell.error = f"{problem} (log: {log_path.relative_to(REPO)})"
                return cell
            cell.gil_enabled = served_gil_state(spec, port)
            subprocess.run(
                wrk_command(wrk, port, load, WARMUP_S),
                capture_output=True,
                timeout=WARMUP_S + 30,
            )
            before = cpu_snapshot(proc.pid)
            done = subprocess.run(
                wrk_command(wrk, port, load, duration),
                capture_output=True,
                text=True,
                timeout=duration + 60,
            )
            cell.server_cpu, cell.other_cpu = cpu_shares(before, cpu_snapshot(proc.pid))
            cell.wrk_output = done.stdout + done.stderr
            for key, value in parse_wrk(cell.wrk_output).items():
                setattr(cell, key, value)
            if proc.poll() is not None:
                cell.error = f"server exited (status {proc.returncode}) during the run"
            elif cell.rps is None:
                cell.error = f"could not parse wrk output (exit {done.returncode})"
        except subprocess.TimeoutExpired as exc:
            cell.error = f"wrk timed out: {exc}"
        finally:
            stop(proc)
    return cell


def served_gil_state(spec: ServerSpec, port: int) -> bool | None:
    """Is the GIL on in the serving process? Peers' apps answer /gil; mummy's app does not."""
    if spec.interp == "gil":
        return True
    try:
        status, body = http_get(port, "/gil")
    except OSError:
        status, body = 0, b""
    if status == 200:
        return body.strip() == b"True"
    if not spec.name.startswith("mummy"):
        return None
    app = Path(spec.command(spec.venv, port, 1)[1])  # mummy's argv: python app port workers
    return import_gil_state(spec.venv, "mummy", app.parent)


# Building the run.


def build_specs(
    args: argparse.Namespace, interpreters: dict[str, Path | None]
) -> tuple[list[ServerSpec], dict[str, str], dict[str, str]]:
    """The servers to run, the install failures and the installed versions."""
    wanted = set(args.servers.split(",")) if args.servers else None
    specs: list[ServerSpec] = []
    failures: dict[str, str] = {}
    versions: dict[str, str] = {}
    app = REPO / "examples/bench_app.py" if args.live else snapshot_mummy()
    run_mummy = functools.partial(mummy_command, app=app)

    for interp in ("ft", "gil"):
        venv = REPO / f".venv-{interp}"
        if not (venv / "bin/python").exists():
            failures[f"mummy-{interp}"] = f"{venv.name} missing: run ./ci/test to provision it"
            continue
        specs.append(
            ServerSpec(
                "mummy",
                interp,
                venv,
                run_mummy,
                mummy_settings,
                pool=args.mummy_workers,
                reference=interp == "ft",
            )
        )
    for n in dict.fromkeys(args.sweep):
        if n != args.mummy_workers and (REPO / ".venv-ft/bin/python").exists():
            specs.append(
                ServerSpec(
                    "mummy (sweep)",
                    "ft",
                    REPO / ".venv-ft",
                    run_mummy,
                    mummy_settings,
                    pool=n,
                    paths=("/", "/cpu"),
                )
            )

    for peer in PEERS:
        if wanted is not None and peer.name not in wanted:
            continue
        command, settings = PEER_COMMANDS[peer.name]
        ft_ok = False
        for interp in ("ft", "gil"):
            if interp == "gil" and args.ft_only and ft_ok:
                continue
            python = interpreters[interp]
            key = f"{peer.name}-{interp}"
            if python is None:
                failures[key] = f"no {INTERPRETER_LABEL[interp]} interpreter"
                continue
            venv, info = ensure_peer_venv(peer, interp, python)
            if venv is None:
                failures[key] = info
                print(f"  {key}: install failed: {info}", flush=True)
                continue
            versions[key] = info
            ft_ok = ft_ok or interp == "ft"
            specs.append(ServerSpec(peer.name, interp, venv, command, settings))
            if peer.name == "gunicorn" and interp == "gil" and not args.ft_only:
                specs.append(
                    ServerSpec(
                        "gunicorn x2",
                        interp,
                        venv,
                        gunicorn2_command,
                        lambda n: f"gthread, 2 processes, --threads {max(1, n // 2)} each",
                    )
                )
    return specs, failures, versions


def machine_info(wrk: str, live: bool) -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "mummy", "examples"], capture_output=True, text=True
    )
    revision = commit.stdout.strip() or "unknown"
    if dirty.stdout.strip():
        revision += " + uncommitted changes in mummy/ or examples/"
    revision += " (working tree, live)" if live else " (copied when the run started)"
    return {
        "cpu": model,
        "cores": CORES,
        "mummy_revision": revision,
        "platform": platform.platform(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "wrk": wrk_version.strip().splitlines()[0] if wrk_version.strip() else "wrk",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# Output.


def fmt_rps(cell: Cell) -> str:
    return "—" if cell.rps is None else f"{cell.rps:,.0f}"


def fmt_p99(cell: Cell) -> str:
    if cell.p99_ms is None:
        return "—"
    return f"{cell.p99_ms:.2f} ms" if cell.p99_ms < 100 else f"{cell.p99_ms:,.0f} ms"


def fmt_cpu(cell: Cell) -> str:
    return "—" if cell.server_cpu is None else f"{cell.server_cpu:.2f}"


def fmt_ratio(cell: Cell, reference: Cell | None) -> str:
    if cell.rps is None or not cell.rps or reference is None or reference.rps is None:
        return "—"
    return f"{reference.rps / cell.rps:.2f}x"


def interpreter_column(cell: Cell) -> str:
    if cell.interpreter == "3.13t" and cell.gil_enabled:
        return "3.13t (GIL re-enabled!)"
    return cell.interpreter


def problems(cell: Cell) -> str:
    notes = []
    if cell.error:
        notes.append(cell.error)
    errors = {k: v for k, v in cell.socket_errors.items() if v}
    if errors:
        notes.append("socket errors " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    if cell.non_2xx:
        notes.append(f"{cell.non_2xx} non-2xx/3xx")
    if cell.other_cpu is not None and cell.other_cpu > OTHER_CPU_WARN:
        notes.append(f"other processes used {cell.other_cpu:.2f} cores during the run")
    return "; ".join(notes)


def markdown(
    cells: list[Cell],
    machine: dict[str, object],
    failures: dict[str, str],
    versions: dict[str, str],
    duration: int,
) -> str:
    out = [
        "# mummy vs peers: HTTP/1.1 req/s (wrk)",
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}",
        f"- mummy: {machine['mummy_revision']}",
        f"- Load average at start: {machine['load_average_at_start']}",
        f"- Client: {machine['wrk']}, `wrk -t{WRK_THREADS} -c<conns> -d{duration}s --latency`"
        f" after a {WARMUP_S} s warm-up, on the same machine as the server (loopback)",
        "",
        "| server | interpreter | settings | path | conns | req/s | p99 | server CPU"
        " | mummy-3.13t ÷ row |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    refs = {c.path: c for c in cells if c.reference}
    for load in LOADS:
        for cell in (c for c in cells if c.path == load.path):
            out.append(
                f"| {cell.server} | {interpreter_column(cell)} | {cell.settings} | {cell.path}"
                f" | {cell.connections} | {fmt_rps(cell)} | {fmt_p99(cell)} | {fmt_cpu(cell)}"
                f" | {fmt_ratio(cell, refs.get(cell.path))} |"
            )
    out += [
        "",
        "Notes:",
        "",
        "- Ratio: mummy on 3.13t (the reference rows, `workers` as shown) req/s divided by"
        " that row's req/s on the same path; above 1 means mummy-3.13t served more.",
        "- Every server runs as one process (gunicorn x2: two), with its thread pool at"
        f" {DEFAULT_POOL} (2 x cores) on `/` and `/cpu` and {SLEEP_POOL} on `/sleep`.",
        "- uvicorn is async: its `/sleep` is `await asyncio.sleep(0.01)` (no thread held) and"
        " its `/cpu` loop runs inline on the event loop; the others block a pool thread in"
        " `time.sleep(0.01)`.",
        "- Server CPU: cores the server's processes used during the timed run (from /proc)."
        f" wrk shares the same {CORES} cores, so CPU-bound rows are understated for every"
        " server alike.",
        "- waitress runs with `--connection-limit=1000` (its default of 100 would sit exactly"
        " at the `/sleep` connection count).",
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
        "--mummy-workers",
        type=int,
        default=DEFAULT_POOL,
        help=f"mummy workers on / and /cpu (default {DEFAULT_POOL}, 2 x cores)",
    )
    parser.add_argument(
        "--sweep",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[],
        help="also run mummy-3.13t on / and /cpu with these worker counts, e.g. 2,8,20",
    )
    parser.add_argument(
        "--servers",
        help="comma-separated peers to include (default: all; `mummy`: mummy alone);"
        " mummy always runs",
    )
    parser.add_argument("--paths", help="comma-separated paths to run (default: /,/sleep,/cpu)")
    parser.add_argument(
        "--live",
        action="store_true",
        help="run mummy from the working tree, not from a copy taken when the run starts",
    )
    parser.add_argument(
        "--ft-only",
        action="store_true",
        help="run peers on 3.13t only (GIL only for a peer that fails to install on 3.13t)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 3
    known = {peer.name for peer in PEERS} | {"mummy", "none"}
    if args.servers and not set(args.servers.split(",")) <= known:
        parser.error(f"--servers takes names from {', '.join(sorted(known))}")
    if args.paths and not set(args.paths.split(",")) <= {load.path for load in LOADS}:
        parser.error("--paths takes /, /sleep and /cpu")
    if not 1 <= args.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    if len(args.sweep) > 8:
        parser.error("--sweep takes at most 8 worker counts")
    return args


def main() -> None:
    args = parse_args()
    if sys.platform != "linux":
        sys.exit("bench/http_servers.py needs Linux (wrk, /proc, process groups)")
    nofile = raise_nofile()
    wrk = ensure_wrk()
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(LOGS, ignore_errors=True)  # only this run's logs
    LOGS.mkdir(parents=True)
    VENVS.mkdir(parents=True, exist_ok=True)

    interpreters = {interp: find_interpreter(interp) for interp in ("ft", "gil")}
    if interpreters["ft"] is None:
        sys.exit("no 3.13t interpreter: set MUMMY_PYTHON_FT or run ./ci/test to build one")
    specs, failures, versions = build_specs(args, interpreters)
    loads = list(LOADS)
    if args.paths:
        loads = [load for load in LOADS if load.path in args.paths.split(",")]

    machine = machine_info(wrk, args.live)
    plan = [(s, load) for load in loads for s in specs if not s.paths or load.path in s.paths]
    estimate = len(plan) * (args.duration + WARMUP_S + 3)
    print(f"{machine['date']}  {machine['cpu']}, {CORES} cores")
    print(f"load average {machine['load_average_at_start']}")
    print(
        f"nofile {nofile}; {len(plan)} cells x {args.duration} s, about {estimate / 60:.1f} min",
        flush=True,
    )

    cells: list[Cell] = []
    for spec, load in plan:
        settings = spec.settings(spec.pool_for(load.path))
        print(
            f"  {spec.name:<13} {spec.label:<6} {load.path:<7} {settings:<42}", end="", flush=True
        )
        cell = run_cell(spec, load, wrk, args.duration)
        cells.append(cell)
        print(
            f"{fmt_rps(cell):>9} req/s  p99 {fmt_p99(cell):>10}  cpu {fmt_cpu(cell):>4}"
            f"  {problems(cell)}",
            flush=True,
        )

    report = markdown(cells, machine, failures, versions, args.duration)
    payload = {
        "machine": machine,
        "duration_s": args.duration,
        "mummy_workers": args.mummy_workers,
        "cells": [asdict(c) for c in cells],
        "install_failures": failures,
        "versions": versions,
    }
    # http.md/json are the latest run; runs/ keeps every run (a partial one too).
    stamp = re.sub(r"[^0-9T]", "", str(machine["date"]))[:15]
    RUNS.mkdir(parents=True, exist_ok=True)
    for target in (RESULTS / "http", RUNS / f"http-{stamp}"):
        target.with_suffix(".md").write_text(report)
        target.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    print()
    print(report)
    print(f"wrote bench/results/http.md, http.json and runs/http-{stamp}.*", flush=True)


if __name__ == "__main__":
    main()
