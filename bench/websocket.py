#!/usr/bin/env python3
"""WebSocket benchmarks: idle connections and broadcast on mummy; echo throughput of mummy
against uvicorn (+ websockets) and granian, side by side in one run.

    ./bench/websocket.py                      # both parts, default sizes
    ./bench/websocket.py --skip-idle --duration 5
    ./bench/websocket.py --connections 2000 --skip-echo
    ./bench/websocket.py --repeat 3           # on a shared machine: 3 runs of each echo cell

(a) Idle: `bench/apps/ws_app.py` on mummy (3.13t, then the GIL build) gets --connections
    WebSockets (10,000) from one Node.js `ws` client, which offers permessage-deflate as
    it does by default. The server's VmRSS (/proc/PID/status) is read before they open
    and once they are all open and idle: (after - before) / connections is the memory a
    connection costs. Then --rounds times a POST /broadcast sends one text message to all;
    the server says how long queueing the sends took, the client when all had arrived.
(b) Echo: --clients (100) connections, each sending a --size (64) byte text message and
    waiting for the echo before the next, for --duration seconds after 2 s of warm-up:
    echoes a second and p50/p99 latency. Servers: mummy on 3.13t and on 3.13 (GIL),
    uvicorn (--ws websockets, httptools) and granian (ASGI, 2.7.9) on 3.13t, each peer in a
    venv under bench/.venvs/ made here from the 3.13t interpreter. Run twice: without
    compression, then with permessage-deflate offered (each server negotiates it or not).
    The CPU used by the server, the client and everything else is measured in each run:
    "others" well above 0 means the machine was busy and the run is noisy.

One server at a time; the load generator is `node bench/ws-client/client.js` (`npm ci` is
run there when node_modules is missing). mummy runs from a copy of mummy/ taken at the
start. Nothing runs while bench/http.py (wrk) does: we wait for it. Writes
bench/results/websocket.md and websocket.json, server logs to bench/results/logs/ws-*.log.
This file only orchestrates: any python3 >= 3.11 runs it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
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
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
APPS = BENCH / "apps"
CLIENT = BENCH / "ws-client"
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
SNAPSHOT = RESULTS / "ws-mummy-snapshot"

HOST = "127.0.0.1"
NODE = "/usr/bin/node"
WARMUP_S = 2
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
PIP_TIMEOUT_S = 900
WRK_WAIT_S = 1800  # the longest we wait for someone else's wrk to finish
INTERPRETERS = {
    "3.13t": Path.home() / ".cache/mummy/cpython-3.13.5-ft/bin/python3.13t",
}
VENV_PYTHON = {"3.13t": REPO / ".venv-ft/bin/python", "3.13": REPO / ".venv-gil/bin/python"}
PEER_PACKAGES = {
    "uvicorn": ("uvicorn", "httptools", "websockets"),
    "granian": ("granian==2.7.9",),
}


@dataclass(frozen=True)
class ServerSpec:
    name: str
    interpreter: str
    command: Callable[[int], list[str]]
    settings: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class IdleResult:
    server: str
    interpreter: str
    connections: int = 0
    failed: int = 0
    open_s: float | None = None
    deflate: bool | None = None
    rss_before_kib: int | None = None
    rss_open_kib: int | None = None
    rss_after_broadcast_kib: int | None = None
    kib_per_connection: float | None = None
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    gil_enabled: bool | None = None
    error: str | None = None


@dataclass
class EchoResult:
    server: str
    interpreter: str
    settings: str
    deflate_offered: bool
    deflate: bool | None = None
    msgs_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    errors: int = 0
    stalled: int = 0  # clients still waiting for an echo 10 s after the end
    server_cpu: float | None = None  # cores the server used during the run
    client_cpu: float | None = None  # cores the Node.js client used
    other_cpu: float | None = None  # cores used by everything else: high means a noisy run
    gil_enabled: bool | None = None
    error: str | None = None


# --- setup -------------------------------------------------------------------------------


def raise_nofile() -> int:
    """Children inherit the limit: 10k sockets in the server and as many in the client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def ensure_client() -> None:
    if not Path(NODE).exists():
        sys.exit(f"{NODE} is missing: install Node.js (Debian: apt-get install nodejs npm)")
    if not (CLIENT / "node_modules/ws/package.json").exists():
        print("installing the ws client: npm ci in bench/ws-client", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True)


def ensure_peer_venv(name: str) -> tuple[Path | None, str]:
    """(venv, installed versions) or (None, why not). Reuses an earlier install."""
    packages = PEER_PACKAGES[name]
    venv = VENVS / f"ws-{name}-ft"
    marker = venv / ".bench-installed"
    wanted = " ".join(packages)
    if not (marker.exists() and marker.read_text() == wanted):
        print(f"installing {wanted} into {venv.relative_to(REPO)}", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        for step in (
            [str(INTERPRETERS["3.13t"]), "-m", "venv", str(venv)],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", *packages],
        ):
            done = subprocess.run(step, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
            if done.returncode != 0:
                return None, f"`{' '.join(step[1:])}` failed: {done.stderr.strip()[-500:]}"
        marker.write_text(wanted)
    names = [p.split("=")[0] for p in packages]
    probe = (
        "import importlib.metadata as m\n"
        f"print(' '.join(d + '==' + m.version(d) for d in {names!r}))"
    )
    done = subprocess.run(
        [str(venv / "bin/python"), "-c", probe], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return None, done.stderr.strip()[-500:]
    return venv, done.stdout.strip()


def snapshot_mummy() -> Path:
    """A copy of mummy/, first on the servers' sys.path: edits to the tree (or a venv
    being re-provisioned) during the run don't change what is measured."""
    if not (SNAPSHOT / "mummy").exists():
        shutil.copytree(
            REPO / "mummy", SNAPSHOT / "mummy", ignore=shutil.ignore_patterns("__pycache__")
        )
    return SNAPSHOT


def servers(peers: dict[str, Path]) -> list[ServerSpec]:
    specs = [
        ServerSpec(
            "mummy",
            label,
            lambda port, py=py: [str(py), str(APPS / "ws_app.py"), str(port)],
            "default workers (10 x CPUs), websocket_compression=True",
            {"PYTHONPATH": str(snapshot_mummy())},
        )
        for label, py in VENV_PYTHON.items()
    ]
    if "uvicorn" in peers:
        specs.append(
            ServerSpec(
                "uvicorn",
                "3.13t",
                lambda port, venv=peers["uvicorn"]: [
                    str(venv / "bin/uvicorn"),
                    *("--host", HOST, "--port", str(port), "--app-dir", str(APPS)),
                    *("--ws", "websockets", "--http", "httptools", "--loop", "asyncio"),
                    *("--no-access-log", "--log-level", "warning", "asgi_ws_app:app"),
                ],
                "1 process, --ws websockets, --http httptools",
            )
        )
    if "granian" in peers:
        specs.append(
            ServerSpec(
                "granian",
                "3.13t",
                lambda port, venv=peers["granian"]: [
                    str(venv / "bin/granian"),
                    *("--interface", "asgi", "--host", HOST, "--port", str(port)),
                    *("--workers", "1", "--no-access-log", "--log-level", "warning"),
                    *("--working-dir", str(APPS), "asgi_ws_app:app"),
                ],
                "ASGI, 1 worker",
            )
        )
    return specs


# --- running servers and the client -----------------------------------------------------


def other_benchmark_running() -> bool:
    """wrk, or bench/http.py between two of its wrk runs."""
    return any(
        subprocess.run(["pgrep", *args], capture_output=True).returncode == 0
        for args in (["-x", "wrk"], ["-f", "bench/http[.]py"])
    )


def wait_for_wrk() -> None:
    """Another benchmark (bench/http.py and its wrk) may be loading the machine: let it
    finish, so that neither run measures the other."""
    deadline = time.monotonic() + WRK_WAIT_S
    told = False
    while other_benchmark_running():
        if not told:
            print("waiting for bench/http.py (wrk) to finish...", flush=True)
            told = True
        if time.monotonic() > deadline:
            sys.exit(f"wrk still running after {WRK_WAIT_S} s; try later")
        time.sleep(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class RunningServer:
    def __init__(self, spec: ServerSpec, log_name: str) -> None:
        self.port = free_port()
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"ws-{log_name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            spec.command(self.port),
            cwd=REPO,
            env={**os.environ, **spec.env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.gil_enabled = self.get("/gil") == "True"
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{spec.name} did not start: {self.log_path.read_text()[-800:]}"
                    ) from None
                time.sleep(0.1)

    def get(self, path: str) -> str:
        """The body of a GET. Raw HTTP/1.0: bench/http.py shadows the `http` package here."""
        with socket.create_connection((HOST, self.port), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        head, _, body = response.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
            raise OSError(f"GET {path}: {head[:100]!r}")
        return body.decode()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def busy_cpu_seconds() -> float:
    """CPU time spent by the whole machine, all processes, since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_event(stdout: IO[str], phase: str) -> dict[str, Any]:
    line = stdout.readline()
    if not line:
        raise RuntimeError(f"the client exited before {phase!r}")
    event: dict[str, Any] = json.loads(line)
    if event.get("phase") == "error":
        raise RuntimeError(f"client: {event['message']}")
    if event.get("phase") != phase:
        raise RuntimeError(f"expected {phase!r} from the client, got {event}")
    return event


def run_idle(spec: ServerSpec, connections: int, rounds: int) -> IdleResult:
    result = IdleResult(spec.name, spec.interpreter)
    wait_for_wrk()
    server = RunningServer(spec, f"idle-{spec.name}-{spec.interpreter}")
    client = None
    try:
        result.gil_enabled = server.gil_enabled
        time.sleep(1)
        result.rss_before_kib = server.rss_kib()
        ws_url = f"ws://{HOST}:{server.port}/ws"
        broadcast_url = f"http://{HOST}:{server.port}/broadcast"
        client = subprocess.Popen(
            [
                *(NODE, str(CLIENT / "client.js"), "idle", ws_url),
                *(str(connections), broadcast_url, str(rounds)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        opened = read_event(client.stdout, "opened")
        result.connections, result.failed = opened["connections"], opened["failed"]
        result.open_s, result.deflate = opened["open_s"], opened["deflate"]
        if opened["first_error"]:
            print(f"  first connection error: {opened['first_error']}", flush=True)
        time.sleep(2)  # let the last OPEN events run
        result.rss_open_kib = server.rss_kib()
        result.kib_per_connection = (result.rss_open_kib - result.rss_before_kib) / max(
            1, result.connections
        )
        client.stdin.write("go\n")
        client.stdin.flush()
        for _ in range(rounds):
            result.broadcasts.append(read_event(client.stdout, "broadcast"))
        result.rss_after_broadcast_kib = server.rss_kib()
        client.stdin.write("close\n")
        client.stdin.flush()
        read_event(client.stdout, "done")
        client.wait(60)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        result.error = str(exc)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        server.stop()
    return result


def run_echo(spec: ServerSpec, clients: int, duration: int, size: int, deflate: bool) -> EchoResult:
    result = EchoResult(spec.name, spec.interpreter, spec.settings, deflate)
    wait_for_wrk()
    try:
        server = RunningServer(
            spec, f"echo-{spec.name}-{spec.interpreter}-deflate-{'on' if deflate else 'off'}"
        )
    except RuntimeError as exc:
        result.error = str(exc)
        return result
    try:
        result.gil_enabled = server.gil_enabled
        before = (server.cpu_seconds(), children_cpu_seconds(), busy_cpu_seconds())
        wall_before = time.monotonic()
        done = subprocess.run(
            [
                *(NODE, str(CLIENT / "client.js"), "echo", f"ws://{HOST}:{server.port}/ws"),
                *(str(clients), str(duration), str(size), str(WARMUP_S)),
                "on" if deflate else "off",
            ],
            capture_output=True,
            text=True,
            timeout=duration + WARMUP_S + 120,
        )
        wall = time.monotonic() - wall_before
        server_s = server.cpu_seconds() - before[0]
        client_s = children_cpu_seconds() - before[1]  # the client, reaped by run()
        result.server_cpu, result.client_cpu = server_s / wall, client_s / wall
        result.other_cpu = max(0.0, busy_cpu_seconds() - before[2] - server_s - client_s) / wall
        lines = done.stdout.strip().splitlines()
        event = json.loads(lines[-1]) if lines else {"phase": "error", "message": done.stderr}
        if event.get("phase") != "echo":
            result.error = str(event.get("message", event))[-800:]
        else:
            keys = ("deflate", "msgs_per_s", "p50_ms", "p99_ms", "max_ms", "errors", "stalled")
            for key in keys:
                setattr(result, key, event[key])
    except (OSError, subprocess.TimeoutExpired) as exc:
        result.error = str(exc)
    finally:
        server.stop()
    return result


# --- reporting ---------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def one_line(text: str) -> str:
    return " ".join(text.replace("|", "/").split())[:300]


def idle_table(results: list[IdleResult]) -> list[str]:
    lines = [
        "| server | interpreter | connections (failed) | deflate | open all, s "
        "| RSS before, MiB | RSS open, MiB | KiB / connection | broadcast: queued, ms "
        "| broadcast: all received, ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.server} | {r.interpreter} | error: {one_line(r.error)} |")
            continue
        queued = [b["server_queued_ms"] for b in r.broadcasts]
        received = [b["all_received_ms"] for b in r.broadcasts if b["all_received_ms"]]
        lost = [b for b in r.broadcasts if b["received"] != b["clients"]]
        lines.append(
            f"| {r.server} | {r.interpreter}{' (GIL on)' if r.gil_enabled else ''} "
            f"| {r.connections:,} ({r.failed}) | {'yes' if r.deflate else 'no'} "
            f"| {fmt(r.open_s, '.1f')} | {fmt((r.rss_before_kib or 0) / 1024, '.1f')} "
            f"| {fmt((r.rss_open_kib or 0) / 1024, '.1f')} | {fmt(r.kib_per_connection, '.1f')} "
            f"| {' / '.join(fmt(q) for q in queued)} "
            f"| {' / '.join(fmt(x) for x in received)}{' (lost messages!)' if lost else ''} |"
        )
    return lines


def echo_table(results: list[EchoResult]) -> list[str]:
    lines = [
        "| server | interpreter | settings | deflate offered / negotiated | echoes/s "
        "| p50, ms | p99, ms | max, ms | CPU, cores: server | client | others | errors "
        "| stalled clients |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        offered = f"{'yes' if r.deflate_offered else 'no'} / "
        if r.error:
            lines.append(
                f"| {r.server} | {r.interpreter} | {r.settings} | {offered} "
                f"| error: {one_line(r.error)} |"
            )
            continue
        lines.append(
            f"| {r.server} | {r.interpreter}{' (GIL on)' if r.gil_enabled else ''} "
            f"| {r.settings} | {offered}{'yes' if r.deflate else 'no'} | {fmt(r.msgs_per_s)} "
            f"| {fmt(r.p50_ms, '.2f')} | {fmt(r.p99_ms, '.2f')} | {fmt(r.max_ms, '.1f')} "
            f"| {fmt(r.server_cpu, '.2f')} | {fmt(r.client_cpu, '.2f')} "
            f"| {fmt(r.other_cpu, '.2f')} | {r.errors} | {r.stalled} |"
        )
    return lines


def quietness(result: EchoResult) -> tuple[bool, float]:
    """Sort key: runs without an error first, then by the CPU other processes used."""
    return (result.error is not None, result.other_cpu or 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="broadcasts to time")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds per echo cell")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="echo runs per cell; the table shows the one least disturbed by other processes",
    )
    parser.add_argument("--servers", default="mummy,uvicorn,granian")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-echo", action="store_true")
    args = parser.parse_args()
    wanted = set(args.servers.split(","))

    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    nofile = raise_nofile()
    if not args.skip_idle and nofile < args.connections + 100:
        sys.exit(f"the open-file limit ({nofile}) is below --connections + 100")
    ensure_client()
    for label, py in VENV_PYTHON.items():
        if not py.exists():
            sys.exit(f"{py} is missing (for mummy on {label}): run ./ci/provision first")
    peers: dict[str, Path] = {}
    versions: dict[str, str] = {}
    for name in sorted(wanted & set(PEER_PACKAGES)):
        venv, info = ensure_peer_venv(name)
        if venv is None:
            print(f"skipping {name}: {info}", flush=True)
        else:
            peers[name], versions[name] = venv, info
    specs = [s for s in servers(peers) if s.name in wanted]

    idle: list[IdleResult] = []
    if not args.skip_idle:
        for spec in (s for s in specs if s.name == "mummy"):
            print(f"idle: {args.connections:,} connections on mummy {spec.interpreter}", flush=True)
            idle.append(run_idle(spec, args.connections, args.rounds))
            print("\n".join(idle_table(idle[-1:])[2:]), flush=True)
    echo: list[EchoResult] = []
    all_echo: list[EchoResult] = []
    if not args.skip_echo:
        cells = [(deflate, spec) for deflate in (False, True) for spec in specs]
        runs: dict[int, list[EchoResult]] = {i: [] for i in range(len(cells))}
        # Rounds over every cell, so that a burst of load elsewhere hits one run of each
        # cell rather than all the runs of one.
        for round_ in range(1, args.repeat + 1):
            for i, (deflate, spec) in enumerate(cells):
                print(
                    f"echo {round_}/{args.repeat}: {spec.name} {spec.interpreter}, "
                    f"deflate offered: {deflate}",
                    flush=True,
                )
                runs[i].append(run_echo(spec, args.clients, args.duration, args.size, deflate))
                print("\n".join(echo_table(runs[i][-1:])[2:]), flush=True)
        for i in range(len(cells)):
            all_echo += runs[i]
            echo.append(min(runs[i], key=quietness))

    node_version = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout
    ws_version = json.loads((CLIENT / "node_modules/ws/package.json").read_text())["version"]
    header = [
        f"# WebSocket benchmarks ({datetime.date.today().isoformat()})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
        f"client: Node.js {node_version.strip()} with ws {ws_version}, on the same machine. "
        f"Peers: {', '.join(versions.values()) or 'none'}.",
        "",
    ]
    body = []
    if idle:
        body += [
            f"## Idle connections and broadcast ({args.connections:,} WebSockets, "
            f"{args.rounds} broadcasts)",
            "",
            *idle_table(idle),
            "",
        ]
    if echo:
        body += [
            f"## Echo ({args.clients} clients, {args.size}-byte text messages, one in flight "
            f"per client, {args.duration} s after {WARMUP_S} s of warm-up"
            + (
                f"; of {args.repeat} runs of each, the one in which other processes used "
                "the least CPU)"
                if args.repeat > 1
                else ")"
            ),
            "",
            *echo_table(echo),
            "",
        ]
    report = "\n".join(header + body)
    print("\n" + report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "websocket.md").write_text(report)
    (RESULTS / "websocket.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "peers": versions,
                "idle": [asdict(r) for r in idle],
                "echo": [asdict(r) for r in echo],
                "echo_all_runs": [asdict(r) for r in all_echo],
            },
            indent=2,
        )
    )
    failed = [r for r in [*idle, *echo] if r.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
